//! The fleet page in a real headless Chromium, against the demo fleet running in this
//! process: every encoder has a tile, a failure shows up through the live updates
//! without a reload, the buttons act, device text stays text, and the page says
//! "disconnected" when the supervisor goes away; behind an admin token, the buttons
//! ask for it once. Skips (saying why) only when Chromium
//! or chromedriver is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/browser.rs"]
mod browser;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use browser::{Browser, Installed};
use conn_supervisor::{
    admin::{self, AdminOptions},
    config::{AdminToken, Tunables},
    demo::Demo,
    fleet::Fleet,
};
use helo_sim::Faults;
use serde_json::Value;
use tokio::{net::TcpListener, sync::oneshot};

/// Checks several times a second, so the test sees changes within a second or two.
fn fast_tunables() -> Tunables {
    Tunables {
        check_interval: Duration::from_millis(500),
        unhealthy_interval: Duration::from_millis(250),
        request_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        health_deadline: Duration::from_millis(800),
        cooling_period: Duration::from_secs(5),
        recovery_backoff: Duration::from_millis(200),
        keepalive_interval: Duration::from_secs(2),
        ..Tunables::default()
    }
}

/// The index and id of the demo encoder in `role` (ids are `demo-NN-ROLE`).
fn role(demo: &Demo, role: &str) -> (usize, String) {
    let suffix = format!("-{role}");
    demo.config
        .encoders
        .iter()
        .enumerate()
        .find(|(_, e)| e.id.ends_with(&suffix))
        .map(|(i, e)| (i, e.id.clone()))
        .unwrap_or_else(|| panic!("the demo has no {role:?} encoder"))
}

fn tile(id: &str) -> String {
    format!("document.querySelector('.tile[data-id=\"{id}\"]')")
}

/// `target/` of this workspace (integration tests know `target/tmp`).
fn target_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().map(PathBuf::from).unwrap_or(tmp)
}

async fn eventually<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks `selector`, answers the confirm() it opens with OK, and waits for the
/// page's result line.
async fn act(b: &Browser, selector: &str, expect: &str) -> String {
    b.client()
        .find(fantoccini::Locator::Css(selector))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let question = b.client().get_alert_text().await.unwrap();
    b.client().accept_alert().await.unwrap();
    let result = b
        .wait_for(
            expect,
            Duration::from_secs(10),
            &format!(
                "const t = document.getElementById('d-result').textContent; \
                 return t.startsWith({expect:?}) ? t : null"
            ),
        )
        .await
        .unwrap();
    format!("{question} -> {}", result.as_str().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_page_follows_the_fleet_live_and_its_buttons_act() {
    let installed = match Installed::find() {
        Ok(i) => i,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let demo = Demo::start(8, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut config = demo.config.clone();
    config.defaults = fast_tunables();
    for e in &mut config.encoders {
        e.tunables = fast_tunables().into();
    }
    let fleet = Fleet::start(&config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (stop_admin, admin_stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(admin::serve(listener, fleet.clone(), async {
        let _ = admin_stopped.await;
    }));
    let n = config.encoders.len();
    let (unreachable, unreachable_id) = role(&demo, "streaming");
    let (hostile_at, hostile_id) = role(&demo, "no-events");
    let (_, id) = role(&demo, "recording");
    let id = id.as_str();
    let b = Browser::start(&installed, 1400, 1000).await.unwrap();
    b.goto(&format!("http://{addr}/")).await.unwrap();

    // One tile per encoder, from the snapshot.
    let ids = b
        .wait_for(
            "a tile per encoder",
            Duration::from_secs(15),
            &format!(
                "const t = [...document.querySelectorAll('.tile')].map(e => e.dataset.id); \
                 return t.length === {n} ? t.sort() : null"
            ),
        )
        .await
        .unwrap();
    assert_eq!(ids, serde_json::json!(fleet.encoder_ids()));
    b.eval("window.noReload = true; return null").await.unwrap();

    // A failure arrives through the live updates: the tile says it in words, and
    // problems come first.
    demo.sims[unreachable].go_unreachable(Duration::from_secs(120));
    let text = b
        .wait_for(
            "an unreachable tile",
            Duration::from_secs(15),
            &format!(
                "const t = {}; return t && t.dataset.level === 'unreachable' ? t.textContent : null",
                tile(&unreachable_id)
            ),
        )
        .await
        .unwrap();
    assert!(text.as_str().unwrap().contains("unreachable"), "{text}");
    let order = b
        .eval("return [...document.querySelectorAll('.tile')].map(e => e.dataset.level)")
        .await
        .unwrap();
    let rank = |l: &Value| {
        [
            "unreachable",
            "critical",
            "degraded",
            "unknown",
            "held",
            "healthy",
        ]
        .iter()
        .position(|x| Some(*x) == l.as_str())
        .unwrap()
    };
    let ranks: Vec<usize> = order.as_array().unwrap().iter().map(rank).collect();
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "problems first: {order}"
    );
    assert_eq!(b.eval("return window.noReload").await.unwrap(), true);

    // The filter matches reason text.
    let filter = b
        .client()
        .find(fantoccini::Locator::Id("filter"))
        .await
        .unwrap();
    filter.send_keys("unreachable").await.unwrap();
    let shown = b
        .wait_for(
            "the filter applied",
            Duration::from_secs(5),
            "const t = [...document.querySelectorAll('.grid li:not([hidden]) .tile')] \
               .map(e => e.dataset.id); \
             return t.length < document.querySelectorAll('.tile').length ? t : null",
        )
        .await
        .unwrap();
    assert!(
        shown
            .as_array()
            .unwrap()
            .contains(&unreachable_id.as_str().into()),
        "{shown}"
    );
    filter.clear().await.unwrap();
    b.eval("document.getElementById('filter').dispatchEvent(new Event('input')); return null")
        .await
        .unwrap();

    // Device text is shown as text: parameter values full of markup from a device.
    let hostile = "<img id=pwned src=x>";
    demo.sims[hostile_at]
        .set_faults(Faults {
            hostile_values: Some(hostile.to_string()),
            ..Faults::default()
        })
        .unwrap();

    // The detail view of one encoder: its connections and its last check's checks.
    eventually(Duration::from_secs(10), "connections to cool", || {
        fleet
            .view(id)
            .filter(|v| !v.connections.is_empty() && v.checks.last.is_some())
    })
    .await;
    b.eval(&format!("{}.click(); return null", tile(id)))
        .await
        .unwrap();
    let detail = b
        .wait_for(
            "the detail view",
            Duration::from_secs(5),
            "const d = document.getElementById('detail'); \
             return d.open && d.textContent.includes('basic_connectivity') ? d.textContent : null",
        )
        .await
        .unwrap();
    let detail = detail.as_str().unwrap();
    assert!(
        detail.contains(id) && detail.contains("connection"),
        "{detail}"
    );

    // Cooldown: its POST cools the encoder's connections (counted as manual cooling).
    let said = act(&b, "#d-cool", "cooling connections").await;
    assert!(said.contains(id), "{said}");
    let manual = format!("helo_cooling_events_total{{encoder_id=\"{id}\",reason=\"manual\"}}");
    assert!(
        fleet.metrics().gather_text().contains(&manual),
        "no manual cooling counted after {said}"
    );

    // Hold and release from the page; the tile follows.
    act(&b, "#d-hold", "held").await;
    assert!(fleet.view(id).unwrap().held);
    b.wait_for(
        "the tile held",
        Duration::from_secs(10),
        &format!("return {}.dataset.level === 'held'", tile(id)),
    )
    .await
    .unwrap();
    act(&b, "#d-hold", "released").await;
    assert!(!fleet.view(id).unwrap().held);
    b.eval("document.getElementById('detail').close(); return null")
        .await
        .unwrap();

    // By now the hostile device has been seen failing.
    eventually(Duration::from_secs(15), "the device's error text", || {
        let v = serde_json::to_string(&fleet.view(&hostile_id)?).ok()?;
        v.contains("pwned").then_some(())
    })
    .await;
    b.eval(&format!("{}.click(); return null", tile(&hostile_id)))
        .await
        .unwrap();
    let shown = b
        .wait_for(
            "the error text in the detail",
            Duration::from_secs(10),
            "const d = document.getElementById('detail'); \
             return d.textContent.includes('<img id=pwned') ? d.textContent : null",
        )
        .await
        .unwrap();
    assert!(shown.as_str().unwrap().contains(hostile), "{shown}");
    assert_eq!(
        b.eval("return document.getElementById('pwned') === null && document.images.length === 0")
            .await
            .unwrap(),
        true,
        "device text became markup"
    );
    b.screenshot(&target_dir().join("fleet-page-detail.png"))
        .await
        .unwrap();
    b.eval("document.getElementById('detail').close(); return null")
        .await
        .unwrap();

    let shot = target_dir().join("fleet-page.png");
    b.screenshot(&shot).await.unwrap();
    eprintln!("screenshot: {}", shot.display());

    // The supervisor goes away: its streams end (so shutdown is not held up), and the
    // page says so.
    stop_admin.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the admin server stops with pages open")
        .unwrap()
        .unwrap();
    let link = b
        .wait_for(
            "the disconnected banner",
            Duration::from_secs(10),
            "return document.getElementById('banner').hidden ? null \
               : document.getElementById('link').textContent",
        )
        .await
        .unwrap();
    assert_eq!(link, "disconnected");
    assert_eq!(
        b.eval("return document.querySelectorAll('.tile').length")
            .await
            .unwrap(),
        n,
        "the last known state stays on the page"
    );

    b.close().await;
    fleet.shutdown(Duration::from_secs(2)).await;
    demo.stop().await;
}

/// The text of the alert the page opens next (confirm or prompt), within 5 s.
async fn next_alert(b: &Browser) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match b.client().get_alert_text().await {
            Ok(text) => return text,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "no alert in time: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn result_line(b: &Browser, expect: &str) -> String {
    let text = b
        .wait_for(
            expect,
            Duration::from_secs(10),
            &format!(
                "const t = document.getElementById('d-result').textContent; \
                 return t.startsWith({expect:?}) ? t : null"
            ),
        )
        .await
        .unwrap();
    text.as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_token_the_buttons_ask_for_it_once() {
    const TOKEN: &str = "page-test-token-0815";
    let installed = match Installed::find() {
        Ok(i) => i,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let demo = Demo::start(8, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let fleet = Fleet::start(&demo.config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (stop_admin, admin_stopped) = oneshot::channel::<()>();
    let options = AdminOptions::default().with_token(AdminToken::new(TOKEN), false);
    let server = tokio::spawn(admin::serve_with(listener, fleet.clone(), options, async {
        let _ = admin_stopped.await;
    }));
    let (_, id) = role(&demo, "recording");
    let id = id.as_str();
    let b = Browser::start(&installed, 1200, 900).await.unwrap();
    b.goto(&format!("http://{addr}/")).await.unwrap();
    b.wait_for(
        "the tile",
        Duration::from_secs(15),
        &format!("return {} !== null", tile(id)),
    )
    .await
    .unwrap();
    b.eval(&format!("{}.click(); return null", tile(id)))
        .await
        .unwrap();
    let click = |selector: &'static str| async {
        b.client()
            .find(fantoccini::Locator::Css(selector))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    };

    // The first action is refused; the page asks for the token. A wrong one is
    // refused again and forgotten.
    click("#d-hold").await;
    assert!(next_alert(&b).await.starts_with("Hold"));
    b.client().accept_alert().await.unwrap();
    let asked = next_alert(&b).await;
    assert!(asked.contains("admin token"), "{asked}");
    b.client().send_alert_text("not-the-token").await.unwrap();
    b.client().accept_alert().await.unwrap();
    let said = result_line(&b, "refused").await;
    assert!(said.contains("401"), "{said}");
    assert!(!fleet.view(id).unwrap().held);
    let kept = b
        .eval("return sessionStorage.getItem('conn-supervisor-admin-token')")
        .await
        .unwrap();
    assert_eq!(kept, Value::Null, "a wrong token is not kept");

    // The right one: done, and kept for this tab.
    click("#d-hold").await;
    b.client().accept_alert().await.unwrap();
    assert!(next_alert(&b).await.contains("admin token"));
    b.client().send_alert_text(TOKEN).await.unwrap();
    b.client().accept_alert().await.unwrap();
    result_line(&b, "held").await;
    assert!(fleet.view(id).unwrap().held);

    // The next action sends it without asking.
    b.wait_for(
        "the tile held",
        Duration::from_secs(10),
        &format!("return {}.dataset.level === 'held'", tile(id)),
    )
    .await
    .unwrap();
    click("#d-hold").await;
    assert!(next_alert(&b).await.starts_with("Release"));
    b.client().accept_alert().await.unwrap();
    result_line(&b, "released").await;
    assert!(!fleet.view(id).unwrap().held);

    b.close().await;
    let _ = stop_admin.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    fleet.shutdown(Duration::from_secs(2)).await;
    demo.stop().await;
}
