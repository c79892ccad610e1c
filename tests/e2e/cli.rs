//! The command line: `penghubung check` reports every problem at once with file and line; `penghubung demo`
//! starts a working demo in one command and writes `demo.env`.

use std::io::BufReader;
use std::process::{Command, Stdio};

use penghubung_tests::{docs, get, penghubung_binary, write_setup};

use crate::shutdown::wait_for_line;

#[test]
fn check_reports_all_problems_at_once_with_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut documents = vec![docs::opd("dinkes")];
    // 1: schema errors in a service (bad classification on line 5, bad endpoint on line 8).
    documents.push((
        "services/dinkes/rm.toml".into(),
        "opd = \"dinkes\"\nname = \"rm\"\nversion = 1\ntitle = \"rm\"\nclassification = \"super\"\n\n[upstream]\nendpoints = [\"gopher://x\"]\n".into(),
    ));
    // 2: TOML syntax error on line 2.
    documents.push((
        "opds/rusak.toml".into(),
        "id = \"rusak\"\nname = = \"x\"\n".into(),
    ));
    // 3: a grant naming a client that does not exist.
    documents.push((
        "grants/g1.toml".into(),
        "id = \"g1\"\nclient = \"dinkes/hantu\"\nservice = \"dinkes/rm/v1\"\noperations = [\"*\"]\ntier = \"bronze\"\n".into(),
    ));
    let config = write_setup(dir.path(), &documents, "");
    let output = Command::new(penghubung_binary())
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("services/dinkes/rm.toml:5:"), "{text}");
    assert!(text.contains("services/dinkes/rm.toml:8:"), "{text}");
    assert!(text.contains("opds/rusak.toml:2:"), "{text}");
    assert!(text.contains("client `dinkes/hantu`"), "{text}");
    assert!(text.contains("check failed"), "{text}");

    // A config with unknown keys: error with its line.
    std::fs::write(&config, "[[listeners]]\naddress = \"127.0.0.1:0\"\n[store]\npath = \"policies\"\ncolour = \"red\"\n").unwrap();
    let output = Command::new(penghubung_binary())
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("penghubung.toml:5:"), "{text}");
    assert!(text.contains("colour"), "{text}");
}

#[test]
fn check_passes_on_the_baseline_policies() {
    let dir = tempfile::tempdir().unwrap();
    let baseline: Vec<(String, String)> = penghubung::baseline_policies()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(baseline.len() >= 10);
    let config = write_setup(dir.path(), &baseline, "");
    let output = Command::new(penghubung_binary())
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("check passed"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_in_one_command_and_its_samples_work() {
    let dir = tempfile::tempdir().unwrap();
    let workdir = dir.path().join("demo");
    let mut child = Command::new(penghubung_binary())
        .args(["demo", "--listen", "127.0.0.1:0", "--workdir"])
        .arg(&workdir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let ready = tokio::task::spawn_blocking(move || wait_for_line(&mut stdout, "ready: "))
        .await
        .unwrap();
    let url = ready.trim_start_matches("ready: ").to_string();
    let env = std::fs::read_to_string(workdir.join("demo.env")).unwrap();
    assert!(env.contains(&format!("PENGHUBUNG_URL={url}")), "{env}");
    let samples: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.starts_with("PENGHUBUNG_SAMPLE_"))
        .map(|(_, v)| v)
        .collect();
    assert!(samples.len() >= 2, "{env}");
    for path in samples {
        let r = get(&format!("{url}{path}")).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(r.json().is_object(), "{path}");
    }
    let r = get(&format!("{url}/dinkes/tidak-ada/v1/x")).await;
    assert_eq!(r.code(), "route.not_found");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
