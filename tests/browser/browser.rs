//! A headless Chromium driven through its own chromedriver, for the browser
//! tests; killed with its driver when dropped.

use std::{
    os::unix::process::CommandExt,
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{elements::Element, Client, ClientBuilder, Locator};

pub struct Browser {
    pub client: Client,
    pub driver: Child,
    /// Where this browser saves downloads (removed with it).
    pub downloads: std::path::PathBuf,
}

/// The phone the layout tests emulate: 390×844 CSS pixels (an iPhone 12–15's
/// screen), touch, a mobile user agent, as Chromium's device mode does.
pub const PHONE: (u32, u32) = (390, 844);

impl Browser {
    /// A desktop window of 1280×900.
    pub async fn start() -> Browser {
        Self::start_with(serde_json::json!({})).await
    }

    /// A mobile-emulated device of `PHONE`'s size: the page lays out at
    /// its width (`width=device-width`), and wider content makes the
    /// document wider than the device rather than being clipped.
    pub async fn start_phone() -> Browser {
        let (width, height) = PHONE;
        Self::start_with(serde_json::json!({
            "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2.0, "touch": true},
            "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
        }))
        .await
    }

    /// `mobile`: Chromium's `mobileEmulation` options, `{}` for none.
    async fn start_with(mobile: serde_json::Value) -> Browser {
        let chromedriver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Its own process group, so Chromium goes with it whatever happens.
        let driver = Command::new(&chromedriver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {chromedriver} (scripts/test installs it): {e}"));
        let downloads =
            std::env::temp_dir().join(format!("te-downloads-{:016x}", rand::random::<u64>()));
        let mut options = serde_json::json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"],
            "prefs": {"download.default_directory": downloads, "download.prompt_for_download": false}
        });
        if mobile.as_object().is_some_and(|m| !m.is_empty()) {
            options["mobileEmulation"] = mobile;
        }
        if let Ok(chrome) = std::env::var("CHROME_BIN") {
            options["binary"] = chrome.into();
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        // Chromium's console, where it reports what the CSP blocked.
        caps.insert(
            "goog:loggingPrefs".into(),
            serde_json::json!({"browser": "ALL"}),
        );
        let mut last_error = None;
        for _ in 0..50 {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => {
                    return Browser {
                        client,
                        driver,
                        downloads,
                    }
                }
                Err(e) => last_error = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("chromedriver did not answer: {last_error:?}");
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// The element's text, or "" while it is being swapped (htmx replaces
    /// elements under our feet; the callers poll).
    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until `check` holds, re-reading the page as it changes by itself.
    pub async fn until<F, Fut>(&self, what: &str, within: Duration, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + within;
        while !check().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited {within:?} for {what}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map_or(0, |all| all.len())
    }

    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::create_dir_all("docs/screenshots").unwrap();
        std::fs::write(format!("docs/screenshots/{name}.png"), png).unwrap();
    }

    /// A marker that survives only as long as the page is not reloaded.
    pub async fn mark_page(&self) {
        self.client
            .execute("window.__noReload = true", vec![])
            .await
            .unwrap();
    }

    pub async fn page_was_not_reloaded(&self) -> bool {
        self.client
            .execute("return window.__noReload === true", vec![])
            .await
            .unwrap()
            == serde_json::json!(true)
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.downloads);
    }
}
