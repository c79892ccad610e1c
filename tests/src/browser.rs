//! A real browser for the console's tests: Debian's headless Chromium driven through `chromedriver` (started on
//! a free port, in its own process group) with the WebDriver client `fantoccini`. The session accepts the admin
//! listener's certificate (issued by the test's own CA) and has a 1366×768 window, the laptop screen the console
//! must fit. Dropping a [`Browser`] ends the WebDriver session (Chromium exits) and kills chromedriver's group.
//!
//! `scripts/test.sh` installs the `chromium` and `chromium-driver` packages when they are missing.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use http::{Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use crate::{empty, http1_client};

/// At most this many browsers at once in one test process: each Chromium takes several processes and a core's
/// worth of start-up, and the machine running the suite may have two cores.
static BROWSERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The WebDriver code of the Tab key.
pub const TAB: &str = "\u{e004}";
/// The WebDriver code of the Enter key.
pub const ENTER: &str = "\u{e007}";

/// The Chromium command-line switches of every session.
pub const CHROMIUM_ARGS: &[&str] =
    &["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,768", "--lang=id-ID"];

/// The chromedriver executable: `PENGHUBUNG_CHROMEDRIVER`, or `chromedriver` on `PATH`.
fn chromedriver_path() -> PathBuf {
    std::env::var_os("PENGHUBUNG_CHROMEDRIVER").map_or_else(|| PathBuf::from("chromedriver"), PathBuf::from)
}

/// The Chromium binary, when one is found where Debian puts it (chromedriver searches otherwise).
fn chromium_binary() -> Option<PathBuf> {
    std::env::var_os("PENGHUBUNG_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| ["/usr/lib/chromium/chromium", "/usr/bin/chromium"].iter().map(PathBuf::from).find(|p| p.exists()))
}

/// The directory test artifacts (screenshots) are kept in: `target/test-artifacts/` of the workspace.
pub fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// chromedriver in its own process group, killed (with every process it started) on drop.
struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Driver {
    /// Starts chromedriver on a free port and waits until `/status` says it is ready (30 s at most).
    async fn start() -> Driver {
        let mut last = String::new();
        for _ in 0..3 {
            let port = crate::free_port();
            let log_dir = tempfile::tempdir().unwrap();
            let log = log_dir.path().join("chromedriver.log");
            let child = Command::new(chromedriver_path())
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "chromedriver could not be started ({e}): install Debian's `chromium` and `chromium-driver` \
                         (scripts/test.sh does when run as root)"
                    )
                });
            let mut driver = Driver { child, port, log, _log_dir: log_dir };
            match driver.wait_ready().await {
                Ok(()) => return driver,
                Err(why) => last = why,
            }
        }
        panic!("chromedriver never became ready: {last}");
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let client = http1_client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("chromedriver exited ({status}): {}", self.log_text()));
            }
            let request = Request::get(format!("http://127.0.0.1:{}/status", self.port)).body(empty()).unwrap();
            if let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(2), client.request(request)).await {
                if response.status() == StatusCode::OK {
                    use http_body_util::BodyExt;
                    let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    let status: Value = serde_json::from_slice(&body).unwrap_or_default();
                    if status["value"]["ready"] == true {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                let _ = self.kill();
                return Err(format!("no ready answer on /status within 30 s: {}", self.log_text()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Kills chromedriver's process group (chromedriver and the Chromium it started), then reaps it.
    fn kill(&mut self) -> std::io::Result<()> {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.kill();
        self.child.wait().map(|_| ())
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// A headless Chromium session.
pub struct Browser {
    client: Option<Client>,
    session: Option<String>,
    driver: Driver,
    _permit: tokio::sync::SemaphorePermit<'static>,
}

impl Browser {
    /// Starts chromedriver and opens a Chromium session.
    pub async fn start() -> Browser {
        let permit = BROWSERS.acquire().await.unwrap();
        let driver = Driver::start().await;
        let mut options = json!({ "args": CHROMIUM_ARGS });
        if let Some(binary) = chromium_binary() {
            options["binary"] = json!(binary.display().to_string());
        }
        let capabilities = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": options,
        });
        let serde_json::Value::Object(capabilities) = capabilities else { unreachable!() };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .unwrap_or_else(|e| panic!("no Chromium session: {e}\n{}", driver.log_text()));
        let session = client.session_id().await.ok().flatten();
        Browser { client: Some(client), session, driver, _permit: permit }
    }

    /// The WebDriver client.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open")
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.client().goto(url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page and returns its value.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.client().execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The HTTP status of the document shown (the navigation's final response, after redirects).
    pub async fn status(&self) -> u16 {
        let value = self
            .execute(
                "const n = performance.getEntriesByType('navigation')[0]; return n ? n.responseStatus : 0;",
                vec![],
            )
            .await;
        value.as_u64().unwrap_or(0) as u16
    }

    /// The path of the page shown.
    pub async fn path(&self) -> String {
        self.client().current_url().await.unwrap().path().to_string()
    }

    /// The document's HTML as the browser holds it.
    pub async fn html(&self) -> String {
        self.client().source().await.unwrap()
    }

    /// The text of the element `css`, or `None` when there is none.
    pub async fn text_of(&self, css: &str) -> Option<String> {
        match self.client().find(Locator::Css(css)).await {
            Ok(element) => Some(element.text().await.unwrap_or_default()),
            Err(_) => None,
        }
    }

    /// Whether an element matches `css`.
    pub async fn has(&self, css: &str) -> bool {
        !self.client().find_all(Locator::Css(css)).await.unwrap().is_empty()
    }

    /// Types `text` into the field `css` (cleared first).
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.client().find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no field {css}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks `css` and waits until the document was replaced (the form's answer loaded).
    pub async fn click_and_wait(&self, css: &str) {
        let client = self.client();
        let old = client.find(Locator::Css("html")).await.unwrap();
        let target = client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("nothing to click at {css}: {e}"));
        target.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
        self.wait_replaced(old).await;
    }

    /// Runs `script` (which navigates, e.g. submits a form) and waits until the document was replaced.
    pub async fn navigate_by_script(&self, script: &str, args: Vec<Value>) {
        let old = self.client().find(Locator::Css("html")).await.unwrap();
        self.execute(script, args).await;
        self.wait_replaced(old).await;
    }

    async fn wait_replaced(&self, old: fantoccini::elements::Element) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // A stale element reference: the old document is gone.
            if old.tag_name().await.is_err() {
                let ready = self.execute("return document.readyState;", vec![]).await;
                if ready == "complete" {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the page was not replaced within 30 s");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Posts a form to `action` from the page shown, as a person editing the page could: `fields` as hidden
    /// inputs, plus the page's own CSRF token (the first `input[name=csrf]`) unless `fields` has one. Waits for
    /// the answer.
    pub async fn post_form(&self, action: &str, fields: Value) {
        let script = "const [action, fields] = arguments;
            const token = document.querySelector('input[name=csrf]');
            const form = document.createElement('form');
            form.method = 'post';
            form.action = action;
            const all = Object.assign({}, fields);
            if (token && !('csrf' in all)) { all.csrf = token.value; }
            for (const [name, value] of Object.entries(all)) {
                const input = document.createElement('input');
                input.type = 'hidden'; input.name = name; input.value = value;
                form.appendChild(input);
            }
            document.body.appendChild(form);
            form.submit();";
        self.navigate_by_script(script, vec![json!(action), fields]).await;
    }

    /// The fields of the page shown (`input` other than hidden and buttons, `select`, `textarea`) that have
    /// neither a non-empty `<label for=…>` nor an `aria-label`: their HTML.
    pub async fn unlabelled_fields(&self) -> Vec<String> {
        let script = "const skip = ['hidden', 'submit', 'button', 'reset', 'image'];
            return Array.from(document.querySelectorAll('input, select, textarea'))
                .filter(e => !(e.tagName === 'INPUT' && skip.includes(e.type)))
                .filter(e => {
                    const aria = (e.getAttribute('aria-label') || '').trim();
                    const byFor = e.id && Array.from(document.querySelectorAll('label[for]'))
                        .some(l => l.htmlFor === e.id && l.textContent.trim() !== '');
                    return !aria && !byFor;
                })
                .map(e => e.outerHTML);";
        let found = self.execute(script, vec![]).await;
        found.as_array().unwrap().iter().map(|f| f.as_str().unwrap_or_default().to_string()).collect()
    }

    /// `Some((scrollWidth, innerWidth))` when the page shown scrolls sideways, `None` when it fits.
    pub async fn sideways_overflow(&self) -> Option<(u64, u64)> {
        let widths = self.execute("return [document.scrollingElement.scrollWidth, window.innerWidth];", vec![]).await;
        let (scroll, inner) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
        (scroll > inner).then_some((scroll, inner))
    }

    /// The text of the page shown whose contrast with its background is below WCAG AA (4.5:1, or 3:1 for large
    /// text: 24 px, or 18.66 px bold): one line each, the text and its ratio. The background is the first
    /// opaque `background-color` up the tree (white when none); colours are the computed ones.
    pub async fn low_contrast_text(&self) -> Vec<String> {
        let script = "const parse = c => { const m = c.match(/[\\d.]+/g) || [0, 0, 0, 0];
                return [+m[0], +m[1], +m[2], m.length > 3 ? +m[3] : 1]; };
            const lum = ([r, g, b]) => { const f = v => { v /= 255;
                return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
                return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
            const background = e => { for (; e; e = e.parentElement) {
                const c = parse(getComputedStyle(e).backgroundColor); if (c[3] > 0.99) return c; }
                return [255, 255, 255, 1]; };
            const out = [];
            for (const e of document.body.querySelectorAll('*')) {
                const own = Array.from(e.childNodes).filter(n => n.nodeType === 3).map(n => n.data).join('').trim();
                if (!own || e.getClientRects().length === 0) continue;
                const style = getComputedStyle(e);
                if (style.visibility === 'hidden' || +style.opacity === 0) continue;
                const fg = parse(style.color), bg = background(e);
                const mix = fg.slice(0, 3).map((v, i) => v * fg[3] + bg[i] * (1 - fg[3]));
                const [a, b] = [lum(mix), lum(bg)];
                const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
                const size = parseFloat(style.fontSize), bold = +style.fontWeight >= 700;
                const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
                if (ratio < need) out.push(own.slice(0, 40) + ' (' + ratio.toFixed(2) + ':1, ' + style.color
                    + ' on rgb(' + bg.slice(0, 3).join(', ') + '))');
            }
            return out;";
        let found = self.execute(script, vec![]).await;
        found.as_array().unwrap().iter().map(|f| f.as_str().unwrap_or_default().to_string()).collect()
    }

    /// Presses Tab until the element `css` has the focus (`limit` presses at most); whether it got there.
    pub async fn tab_to(&self, css: &str, limit: usize) -> bool {
        for pressed in 0..=limit {
            let here = self.execute("return document.activeElement.matches(arguments[0]);", vec![json!(css)]).await;
            if here == true {
                return true;
            }
            if pressed < limit {
                self.press(TAB).await;
            }
        }
        false
    }

    /// Sends `keys` to the element that has the focus (the body when none).
    pub async fn press(&self, keys: &str) {
        let element = self.client().active_element().await.unwrap();
        element.send_keys(keys).await.unwrap();
    }

    /// Whether the focused element shows a visible focus indicator (an outline or a box shadow).
    pub async fn focus_is_visible(&self) -> bool {
        let script = "const s = getComputedStyle(document.activeElement);
            return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';";
        self.execute(script, vec![]).await == true
    }

    /// Saves a PNG screenshot of the viewport as `target/test-artifacts/{name}`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client().screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is no PNG");
        let path = artifacts_dir().join(name);
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Ends the session (Chromium exits) and stops chromedriver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
            self.session = None;
        }
        let _ = self.driver.kill();
    }
}

impl Drop for Browser {
    /// A test that panicked still ends its session: a blocking `DELETE /session/{id}` to chromedriver (Chromium
    /// exits cleanly), then the process group is killed.
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            use std::io::{Read, Write};
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.driver.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let request = format!(
                    "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                if stream.write_all(request.as_bytes()).is_ok() {
                    let _ = stream.read(&mut [0u8; 1024]);
                }
            }
        }
        let _ = self.driver.kill();
    }
}
