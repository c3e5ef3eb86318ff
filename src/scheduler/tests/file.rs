//! The state a profile shows is true of the credentials file: a write that fails (or a
//! file found broken after the credentials were in it) shows until a write lands, through
//! new fetches, and turns `expired` when the copy in the file lapses; a profile whose earlier
//! credentials are in the file counts as delivered while newer ones are being written.

use super::*;
use crate::readiness::check;

fn ready(h: &Harness) -> bool {
    check(&h.status.borrow(), &[], h.clock.now()).unwrap().ready
}

/// The state and `last_error` of `name` now.
fn shown(h: &Harness, name: &str) -> (ProfileState, Option<String>) {
    let p = h.state(name);
    (p.state, p.last_error)
}

fn not_written(why: &str) -> Option<String> {
    Some(format!("the credentials file was not updated: {why}"))
}

/// The last delivery sent since `before` (the last one before, when none).
fn newest(h: &mut Harness, before: Option<Delivery>) -> Delivery {
    let mut d = before;
    while let Ok(next) = h.deliveries.try_recv() {
        d = Some(next);
    }
    d.expect("a delivery")
}

fn last(h: &mut Harness) -> Delivery {
    newest(h, None)
}

/// The writer reports `d` in the file: `a` is fresh and counts.
async fn lands(h: &Harness, d: &Delivery) {
    h.report(d, Ok(()));
    advance(1).await;
    assert_eq!(shown(h, "a"), (ProfileState::Fresh, None));
    assert!(ready(h));
}

/// A harness whose one profile `a` (credentials valid for `lifetime`) is fresh, its
/// credentials in the file; and the delivery that put them there.
async fn fresh(lifetime: Duration) -> (Harness, Delivery) {
    let mut h = Harness::start_writing(vec![profile("a", None)], lifetime, false);
    advance(1).await;
    let d = last(&mut h);
    lands(&h, &d).await;
    (h, d)
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_shows_through_new_fetches_until_the_file_copy_lapses() {
    const FULL: &str = "No space left on device (os error 28)";
    let (mut h, d1) = fresh(Duration::from_secs(30)).await;
    // A forced refresh whose write fails.
    let asked = ask_refresh(&h, &["a"]).await;
    advance(1).await;
    let d2 = last(&mut h);
    h.report(&d2, Err(FULL));
    let out = answered(asked, 2).await;
    assert_eq!(
        (out[0].state, out[0].last_error.clone()),
        (ProfileState::Retrying, not_written(FULL))
    );
    // Another fetch while the file is still broken: fetched, not written yet, it shows the
    // write error still, never `refreshing` with no error.
    let _asked = ask_refresh(&h, &["a"]).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(shown(&h, "a"), (ProfileState::Retrying, not_written(FULL)));
        assert!(!ready(&h));
    }
    // The file's copy (d1) lapses while the writer still fails: `expired`, though the
    // credentials held are valid.
    let until = d1.creds.expiration;
    let mut d = d2;
    while h.clock.now() <= until {
        d = newest(&mut h, Some(d));
        h.report(&d, Err(FULL));
        advance(1).await;
        if h.clock.now() < until {
            assert_eq!(shown(&h, "a"), (ProfileState::Retrying, not_written(FULL)));
        }
    }
    advance(1).await;
    assert_eq!(shown(&h, "a"), (ProfileState::Expired, not_written(FULL)));
    assert!(h.state("a").expires_at.unwrap() > h.clock.now());
    assert!(!ready(&h));
    // A write lands: fresh.
    let d = newest(&mut h, Some(d));
    lands(&h, &d).await;
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn credentials_lost_from_the_file_show_until_written_again() {
    const DIR: &str = "failed to read /h/.aws/credentials: not a regular file";
    let (h, d) = fresh(Duration::from_secs(3600)).await;
    // The file watch found the file replaced by a directory; the writer cannot put the
    // credentials back.
    h.report(&d, Err(DIR));
    advance(1).await;
    assert_eq!(shown(&h, "a"), (ProfileState::Retrying, not_written(DIR)));
    assert!(!ready(&h));
    lands(&h, &d).await;
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn earlier_credentials_in_the_file_count_while_new_ones_are_written() {
    let (mut h, _) = fresh(Duration::from_secs(3600)).await;
    let asked = ask_refresh(&h, &["a"]).await;
    advance(1).await;
    // Fetched, not written yet: `refreshing`, and the earlier credentials in the file count.
    let d2 = last(&mut h);
    assert_eq!(shown(&h, "a"), (ProfileState::Refreshing, None));
    assert!(ready(&h));
    h.report(&d2, Ok(()));
    let out = answered(asked, 2).await;
    assert_eq!(out[0].state, ProfileState::Fresh);
    assert!(ready(&h));
    h.shutdown.cancel();
}
