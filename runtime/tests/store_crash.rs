//! Crash safety of the message store: a child process (this test binary,
//! re-run as `crash_child`) stores messages as fast as it can and prints each
//! id once `commit_message` returned; the parent kills it with SIGKILL at a
//! random moment, recovers the store as the server does at start, and checks
//! that every acknowledged message is there and intact, and that nothing
//! partial is visible. A handful of rounds, each well under a second or two.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vflow_runtime::store::{NewMessage, Store};
use vflow_runtime::voicemail::{self, MailboxUpdate};

const ROUNDS: usize = 6;
const CHILD_ENV: &str = "VFLOW_CRASH_CHILD_DIR";

/// The audio of message `seed`: `n` samples that depend on the seed and position.
fn pattern(seed: u64, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| ((seed.wrapping_mul(7919).wrapping_add(i as u64 * 31)) % 20_000) as i16 - 10_000)
        .collect()
}

/// The writer. Ignored in normal runs; the parent runs it with `--ignored`.
#[test]
#[ignore = "run by store_messages_survive_kill_9 as its child process"]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = Store::open(Path::new(&dir)).expect("open");
    store.recover().expect("recover");
    if voicemail::mailbox(&store, "201").unwrap().is_none() {
        voicemail::create_mailbox(&store, "201", &MailboxUpdate::default()).unwrap();
    }
    let mut seed: u64 = std::process::id() as u64 * 1000;
    let out = std::io::stdout();
    loop {
        seed += 1;
        // 0.1 s to 1.1 s of audio, written in chunks as a call streams it.
        let n = 800 + (seed as usize * 613) % 8000;
        let samples = pattern(seed, n);
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut rec = store.begin_recording(&format!("crash-{seed}")).unwrap();
        for chunk in bytes.chunks(1600) {
            rec.append(chunk).unwrap();
        }
        let m = store
            .commit_message(
                rec,
                &NewMessage {
                    mailbox: "201".into(),
                    caller: seed.to_string(),
                    caller_name: String::new(),
                    received_ms: seed as i64,
                    priority: "normal".into(),
                    origin_node: "crash".into(),
                    call_id: format!("c{seed}"),
                    flow_node: "t.t".into(),
                },
            )
            .unwrap();
        let mut o = out.lock();
        writeln!(o, "committed {} {seed} {n}", m.id).unwrap();
        o.flush().unwrap();
    }
}

/// A small xorshift, seeded from the clock: kill times differ between runs.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Checks message `id` holds `n` samples of `seed`'s pattern (`n`: `None` takes the file's length).
fn check_message(store: &Store, id: &str, seed: u64, n: Option<usize>) {
    let m = store
        .message(id)
        .unwrap()
        .unwrap_or_else(|| panic!("acknowledged message {id} (seed {seed}) is lost"));
    assert_eq!(m.caller, seed.to_string());
    let path = store.message_path("201", id);
    let reader =
        hound::WavReader::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let got: Vec<i16> = reader.into_samples::<i16>().map(|s| s.unwrap()).collect();
    let n = n.unwrap_or(got.len());
    assert_eq!(got.len(), n, "message {id}: sample count");
    assert!(
        got == pattern(seed, n),
        "message {id}: audio differs from what was written"
    );
    assert_eq!(m.duration_ms, n as u64 / 8);
}

#[test]
fn store_messages_survive_kill_9() {
    let dir: PathBuf = std::env::temp_dir().join(format!("vflow-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng(Instant::now().elapsed().as_nanos() as u64
        ^ 0x9E37_79B9_7F4A_7C15
        ^ std::process::id() as u64);
    let mut acknowledged: Vec<(String, u64, usize)> = Vec::new();
    let exe = std::env::current_exe().unwrap();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| {
                    let mut w = l.strip_prefix("committed ")?.split(' ');
                    Some((
                        w.next()?.to_string(),
                        w.next()?.parse().ok()?,
                        w.next()?.parse().ok()?,
                    ))
                })
                .collect::<Vec<(String, u64, usize)>>()
        });
        let wait = 150 + rng.next() % 650;
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let got = reader.join().unwrap();
        eprintln!(
            "round {round}: killed after {wait} ms, {} messages acknowledged",
            got.len()
        );
        acknowledged.extend(got);

        // What the server does at start, then the checks.
        let store = Store::open(&dir).unwrap();
        let r = store.recover().unwrap();
        assert!(
            r.missing_audio.is_empty(),
            "rows without audio: {:?}",
            r.missing_audio
        );
        for (id, seed, n) in &acknowledged {
            check_message(&store, id, *seed, Some(*n));
        }
        // Every visible message is whole: its audio is exactly what its writer wrote.
        for m in store.messages("201", None).unwrap() {
            let seed: u64 = m.caller.parse().unwrap();
            check_message(&store, &m.id, seed, None);
        }
        assert!(
            std::fs::read_dir(dir.join("tmp")).unwrap().next().is_none(),
            "tmp/ is clean after recovery"
        );
        let files = std::fs::read_dir(dir.join("messages/201"))
            .map(|rd| rd.count())
            .unwrap_or(0);
        assert_eq!(
            files,
            store.messages("201", None).unwrap().len(),
            "one file per row after recovery"
        );
    }
    assert!(
        !acknowledged.is_empty(),
        "the child stored something in {ROUNDS} rounds"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
