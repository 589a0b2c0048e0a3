//! A small W3C WebDriver client for a throwaway chromedriver driving headless Debian chromium:
//! the driver starts on a free port, every wait is bounded, and the driver (with its browser)
//! is killed when the [`Driver`] is dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::http::{self, Response};

/// The key W3C WebDriver names element references with.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long the driver may take to start, and an element to appear.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Where chromium and chromedriver are, when both are installed.
pub fn find_browser() -> Option<(PathBuf, PathBuf)> {
    let on_path = |name: &str| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(name))
                .find(|p| p.is_file())
        })
    };
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(on_path)?;
    let driver = on_path("chromedriver")?;
    Some((chromium, driver))
}

/// A chromedriver process and one browser session in it.
pub struct Driver {
    child: Child,
    addr: SocketAddr,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Ends the browser (never panicking: this may run while a failed test unwinds), then
        // the driver.
        if !self.session.is_empty() {
            let _ = http::try_request(
                self.addr,
                "DELETE",
                &format!("/session/{}", self.session),
                &[],
                "",
                Duration::from_secs(10),
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Driver {
    /// Starts chromedriver on a free port and a headless chromium session with a window of
    /// `width` × `height`.
    pub fn start(chromium: &Path, driver: &Path, width: u32, height: u32) -> Self {
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut d = Self {
            child,
            addr,
            session: String::new(),
        };
        // Bounded: the driver answers /status as ready, or the test fails saying so.
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("chromedriver exited at start: {status}");
            }
            if std::net::TcpStream::connect(addr).is_ok() {
                let r = http::get(addr, "/status");
                if value(&r)["ready"] == json!(true) {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver on port {port} was not ready within {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(50)); // polling interval, not a sync
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--hide-scrollbars",
                         format!("--window-size={width},{height}")],
            },
        }}});
        let r = d.post("/session", &caps);
        d.session = r["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_owned();
        // Finding an element waits for it up to the patience (the driver's bounded wait).
        d.post_session(
            "/timeouts",
            &json!({ "implicit": PATIENCE.as_millis() as u64, "pageLoad": 60_000 }),
        );
        d
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let r = http::request(
            self.addr,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            &body.to_string(),
        );
        let v = value(&r);
        assert_eq!(r.status, 200, "POST {path}: {v}");
        v
    }

    fn post_session(&self, path: &str, body: &Value) -> Value {
        self.post(&format!("/session/{}{path}", self.session), body)
    }

    fn get_session(&self, path: &str) -> Value {
        let r = http::get(self.addr, &format!("/session/{}{path}", self.session));
        let v = value(&r);
        assert_eq!(r.status, 200, "GET {path}: {v}");
        v
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.post_session("/url", &json!({ "url": url }));
    }

    /// The page's address.
    pub fn url(&self) -> String {
        self.get_session("/url")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element `css` selects, waiting for it (bounded).
    pub fn find(&self, css: &str) -> String {
        let v = self.post_session(
            "/element",
            &json!({ "using": "css selector", "value": css }),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    /// Every element `css` selects now (after the first appeared, bounded).
    pub fn find_all(&self, css: &str) -> Vec<String> {
        let v = self.post_session(
            "/elements",
            &json!({ "using": "css selector", "value": css }),
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Clicks an element.
    pub fn click(&self, element: &str) {
        self.post_session(&format!("/element/{element}/click"), &json!({}));
    }

    /// An element's visible text.
    pub fn text(&self, element: &str) -> String {
        self.get_session(&format!("/element/{element}/text"))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// An element's attribute.
    pub fn attribute(&self, element: &str, name: &str) -> Option<String> {
        self.get_session(&format!("/element/{element}/attribute/{name}"))
            .as_str()
            .map(str::to_owned)
    }

    /// Runs `script` in the page and returns its value.
    pub fn script(&self, script: &str) -> Value {
        self.post_session("/execute/sync", &json!({ "script": script, "args": [] }))
    }

    /// A PNG of the viewport, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        let b64 = self.get_session("/screenshot");
        let png = base64(b64.as_str().expect("a screenshot is base64 text"));
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

/// The `value` of a WebDriver answer.
fn value(r: &Response) -> Value {
    serde_json::from_str::<Value>(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body))
        ["value"]
        .clone()
}

/// Standard base64 (with padding), as WebDriver sends screenshots.
fn base64(text: &str) -> Vec<u8> {
    let digit = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for d in text.bytes().filter_map(digit) {
        acc = (acc << 6) | d;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
