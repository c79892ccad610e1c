//! The browser harness proved on a page served here (no gateway): chromedriver starts on a free port, headless
//! Chromium loads a page from a real hyper server, types into a form, posts it, reads the answer, its status
//! and cookies, takes a screenshot, and is gone after the session closes.

use std::time::Duration;

use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use penghubung_tests::browser::{artifacts_dir, Browser};
use penghubung_tests::{full, Upstream};

const FORM: &str = "<!doctype html><html lang=\"id\"><head><title>Uji</title></head><body>\
<form id=\"f\" method=\"post\" action=\"/echo\"><input type=\"hidden\" name=\"csrf\" value=\"t0k3n\">\
<label for=\"nama\">Nama</label><input id=\"nama\" name=\"nama\">\
<select aria-label=\"Peran\" name=\"peran\"><option>a</option></select>\
<button type=\"submit\" id=\"kirim\">Kirim</button></form></body></html>";

/// A page with a field nobody labelled, a label pointing nowhere, and a block wider than the window.
const FLAWED: &str = "<!doctype html><html lang=\"en\"><body><label for=\"lain\">Lain</label>\
<input id=\"tanpa\" name=\"tanpa\"><textarea name=\"isi\"></textarea>\
<div style=\"width: 2000px\">lebar</div><p style=\"color: #aaa\">pucat</p>\
<div style=\"background: #003\"><p style=\"color: #fff\">kontras</p></div></body></html>";

async fn page_server() -> Upstream {
    Upstream::start(|request: hyper::Request<hyper::body::Incoming>| async move {
        match (request.method().clone(), request.uri().path()) {
            (Method::GET, "/") => Response::builder()
                .header("content-type", "text/html; charset=utf-8")
                .header("set-cookie", "uji=1; Path=/; HttpOnly; SameSite=Strict")
                .body(full(FORM))
                .unwrap(),
            (Method::GET, "/flawed") => {
                Response::builder().header("content-type", "text/html; charset=utf-8").body(full(FLAWED)).unwrap()
            }
            (Method::POST, "/echo") => {
                let body = request.into_body().collect().await.unwrap().to_bytes();
                let text = String::from_utf8_lossy(&body).replace('+', " ");
                let html = format!("<!doctype html><html lang=\"en\"><body><p id=\"seen\">{text}</p></body></html>");
                Response::builder()
                    .status(StatusCode::ACCEPTED)
                    .header("content-type", "text/html; charset=utf-8")
                    .body(full(html))
                    .unwrap()
            }
            _ => Response::builder().status(StatusCode::NOT_FOUND).body(full("")).unwrap(),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_harness_drives_a_page_served_here() {
    let server = page_server().await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/", server.url())).await;
    assert_eq!(browser.status().await, 200);
    assert_eq!(browser.execute("return document.documentElement.lang;", vec![]).await, "id");
    // The window is the laptop screen the console must fit.
    let size = browser.execute("return [window.innerWidth, window.innerHeight];", vec![]).await;
    assert_eq!(size[0], 1366, "{size}");
    // An HttpOnly cookie is invisible to the page's script but visible to WebDriver.
    assert_eq!(browser.execute("return document.cookie;", vec![]).await, "");
    let cookie = browser.client().get_named_cookie("uji").await.unwrap();
    assert_eq!((cookie.value(), cookie.http_only()), ("1", Some(true)));

    assert_eq!(browser.unlabelled_fields().await, Vec::<String>::new());
    assert_eq!(browser.sideways_overflow().await, None);
    assert_eq!(browser.low_contrast_text().await, Vec::<String>::new());
    // The keyboard reaches the field and the button; the browser's default focus ring shows.
    assert!(browser.tab_to("#nama", 5).await);
    assert!(browser.tab_to("#kirim", 5).await);
    assert!(browser.focus_is_visible().await);

    browser.fill("#nama", "Sari Dewi").await;
    browser.click_and_wait("#kirim").await;
    assert_eq!(browser.path().await, "/echo");
    assert_eq!(browser.status().await, 202);
    assert_eq!(browser.text_of("#seen").await.as_deref(), Some("csrf=t0k3n&nama=Sari Dewi&peran=a"));
    assert!(!browser.has("#nama").await);

    // A form posted by script carries the page's token unless told otherwise.
    browser.goto(&format!("{}/", server.url())).await;
    browser.post_form("/echo", serde_json::json!({"aksi": "setuju"})).await;
    assert_eq!(browser.text_of("#seen").await.as_deref(), Some("aksi=setuju&csrf=t0k3n"));
    browser.goto(&format!("{}/", server.url())).await;
    browser.post_form("/echo", serde_json::json!({"csrf": ""})).await;
    assert_eq!(browser.text_of("#seen").await.as_deref(), Some("csrf="));

    // The checks the console's pages go through find what is wrong.
    browser.goto(&format!("{}/flawed", server.url())).await;
    let unlabelled = browser.unlabelled_fields().await;
    assert_eq!(unlabelled.len(), 2, "{unlabelled:?}");
    assert!(unlabelled[0].contains("tanpa") && unlabelled[1].starts_with("<textarea"), "{unlabelled:?}");
    let (scroll, inner) = browser.sideways_overflow().await.expect("the page scrolls sideways");
    assert!(scroll >= 2000 && inner == 1366, "{scroll} {inner}");
    let pale = browser.low_contrast_text().await;
    assert_eq!(pale.len(), 1, "{pale:?}");
    assert!(pale[0].starts_with("pucat (2.3"), "{pale:?}");

    let shot = browser.screenshot("harness-self-test.png").await;
    assert!(shot.starts_with(artifacts_dir()));
    assert!(std::fs::metadata(&shot).unwrap().len() > 100);
    let seen: Vec<String> = server.seen().iter().map(|r| format!("{} {}", r.method, r.uri)).collect();
    assert!(seen.contains(&"GET /".to_string()) && seen.contains(&"POST /echo".to_string()), "{seen:?}");
    let port = browser.client().current_url().await.unwrap().port();
    browser.close().await;
    assert!(port.is_some());
    // The session is over: a new one still starts (chromedriver and Chromium were cleaned up, not left holding
    // the permit or the profile).
    let again = tokio::time::timeout(Duration::from_secs(60), Browser::start()).await.expect("a second session");
    again.goto(&format!("{}/", server.url())).await;
    assert!(again.has("#f").await);
}

/// What a console that checks `Origin` on its forms must know: Chromium sends `Origin: null` on a page's own
/// same-origin form POST when the page was answered with `Referrer-Policy: no-referrer`, and the real origin
/// under `same-origin`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_sends_origin_null_on_form_posts_under_no_referrer() {
    let server = Upstream::start(|request: hyper::Request<hyper::body::Incoming>| async move {
        let policy = if request.uri().path().contains("same-origin") { "same-origin" } else { "no-referrer" };
        let origin = request.headers().get("origin").map(|o| o.to_str().unwrap().to_string()).unwrap_or_default();
        let html = format!(
            "<!doctype html><html><body><p id=\"origin\">{origin}</p>\
             <form method=\"post\" action=\"\"><button id=\"post\">kirim</button></form></body></html>"
        );
        Response::builder()
            .header("content-type", "text/html; charset=utf-8")
            .header("referrer-policy", policy)
            .body(full(html))
            .unwrap()
    })
    .await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/no-referrer", server.url())).await;
    browser.click_and_wait("#post").await;
    assert_eq!(browser.text_of("#origin").await.as_deref(), Some("null"));
    browser.goto(&format!("{}/same-origin", server.url())).await;
    browser.click_and_wait("#post").await;
    assert_eq!(browser.text_of("#origin").await, Some(server.url()));
    browser.close().await;
}
