//! What the middleware cost: the `middleware` suite counts the instructions of one in-process
//! call of a hello app bare and behind each middleware (the stacks of
//! `common/middleware_stacks.rs`, which the criterion benchmark times too); the `api` suite
//! compares the `api` example's whole stack with the `hello` example, as servers, in
//! instructions per request (callgrind) and in requests per second (wrk).
//!
//! The in-process counts run this harness again under `valgrind --tool=callgrind` as
//! `--middleware-calls NAME N`: one process builds every stack, then calls the one named `N`
//! times on a current-thread runtime. As in the `callgrind` suite, each stack runs with N and
//! 2N calls and `(instructions(2N) - instructions(N)) / N` is the cost of one call: building
//! the stacks, the runtime and the process cancel out.

use std::hint::black_box;
use std::path::Path;
use std::process::{Command, Stdio};

use asgi::core::host::testing;

use crate::middleware_stacks::Stacks;
use crate::process::ServerKind;
use crate::{BoxResult, Settings};

/// The child process of the `middleware` suite: `n` calls of the stack called `name`, each
/// checked to answer `200`.
pub(crate) fn run_calls(name: &str, n: u64) -> BoxResult<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stacks = Stacks::new(&rt);
    let app = stacks
        .get(name)
        .ok_or_else(|| format!("no middleware stack called {name:?}"))?;
    rt.block_on(async {
        for _ in 0..n {
            let outcome = testing::call(app, stacks.scope.clone(), []).await;
            if outcome.status().map(|s| s.as_u16()) != Some(200) {
                return Err(format!("{name} answered {:?}", outcome.status()).into());
            }
            black_box(outcome);
        }
        Ok(())
    })
}

/// The instructions of one run of `--middleware-calls name n` under callgrind.
fn count_calls(name: &str, n: u64, dir: &Path) -> BoxResult<u64> {
    let out = dir.join(format!("{name}-{n}.out"));
    let status = Command::new("valgrind")
        .args(["--tool=callgrind", "--quiet"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(std::env::current_exe()?)
        .args(["--middleware-calls", name, &n.to_string()])
        .stdin(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("--middleware-calls {name} {n} failed: {status}").into());
    }
    Ok(crate::Counts::read(&out)?.instructions)
}

/// Instructions per in-process call of each middleware stack, and each layer's cost over the
/// bare app.
pub(crate) async fn middleware_suite(settings: &Settings) -> BoxResult<()> {
    let n = settings.callgrind_requests.max(1);
    println!(
        "== Middleware, instructions per in-process call (callgrind, {n} and {} calls)",
        2 * n
    );
    let dir = std::env::temp_dir().join(format!("asgi-load-middleware-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // The names, from the list itself; on a thread of its own, since building the stacks
    // runs a runtime and this suite already runs on one.
    let names: Vec<&str> = std::thread::spawn(|| -> Result<Vec<&'static str>, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Stacks::new(&rt)
            .apps
            .iter()
            .map(|(name, _)| *name)
            .collect())
    })
    .join()
    .map_err(|_| "building the middleware stacks panicked")??;
    let mut bare = f64::NAN;
    for name in names {
        let once = count_calls(name, n, &dir)?;
        let twice = count_calls(name, 2 * n, &dir)?;
        let per_call = twice.saturating_sub(once) as f64 / n as f64;
        if name == "bare" {
            bare = per_call;
        }
        println!(
            "  {name:<26} {:>8.1}k per call  layer {:>+8.1}k  {:.2}x bare",
            per_call / 1000.0,
            (per_call - bare) / 1000.0,
            per_call / bare
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The `api` example's stack against the `hello` example: instructions per request under
/// callgrind, then requests per second with wrk, in turns.
pub(crate) async fn api_suite(settings: &Settings) -> BoxResult<()> {
    let kinds = [ServerKind::Hello, ServerKind::Api];
    let n = settings.callgrind_requests.max(1);
    println!(
        "== The api example's stack vs hello (`GET {}` vs `GET {}`)",
        ServerKind::Api.hello_path(),
        ServerKind::Hello.hello_path()
    );
    let dir = std::env::temp_dir().join(format!("asgi-load-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut instructions = Vec::new();
    for kind in kinds {
        let once = crate::callgrind_count(kind, n, None, false, &dir)
            .await?
            .instructions;
        let twice = crate::callgrind_count(kind, 2 * n, None, false, &dir)
            .await?
            .instructions;
        instructions.push(twice.saturating_sub(once) as f64 / n as f64);
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "  instructions per request (callgrind, {n} and {} keep-alive GETs): hello {:.1}k, api {:.1}k, ratio api/hello = {:.2}",
        2 * n,
        instructions[0] / 1000.0,
        instructions[1] / 1000.0,
        instructions[1] / instructions[0]
    );
    let turns = crate::in_turns(&kinds, settings, |kind, addr| {
        crate::client::wrk(
            addr,
            kind.hello_path(),
            settings.connections,
            settings.seconds,
        )
    })
    .await?;
    let throughput = turns.means();
    println!(
        "  requests/s over HTTP/1.1 (wrk, {} connections, {} s x {} rounds): hello {:.0}, api {:.0}, ratio api/hello = {:.3}",
        settings.connections,
        settings.seconds,
        settings.rounds,
        throughput[0],
        throughput[1],
        throughput[1] / throughput[0]
    );
    Ok(())
}
