//! Benchmarks of the whole service on this machine: start-up and idle memory, submit-to-review
//! latency with real Python, sustained approvals per second, and the SDK workload next to the
//! official Python SDK's. See BENCHMARKS.md for the commands and the results.
//!
//! Build once with `cargo build --release --bin handler --example bench`, then run
//! `target/release/examples/bench all` (or one part: `startup`, `latency`, `throughput`,
//! `serve-throughput`, `sdk`, `fsync`). Every part prints readable lines and a JSON line
//! starting with `RESULT `.

mod flows;
mod procs;
mod sampler;
mod sdk;
mod startup;
mod stats;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use sampler::CpuSampler;

#[derive(Parser)]
#[command(about = "Benchmarks of the handler")]
struct Cli {
    /// The `handler` binary to measure (by default the one beside this example).
    #[arg(long, global = true)]
    handler: Option<PathBuf>,
    #[command(subcommand)]
    part: Part,
}

#[derive(Subcommand)]
enum Part {
    /// Start to first `GET /` answer, and idle memory, of `handler dev` and `handler` (serve).
    Startup {
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Submit-to-`awaiting_approval` latency on `handler dev`, one submission at a time.
    Latency {
        #[arg(long, default_value_t = 100)]
        count: usize,
        #[arg(long, default_value_t = 5)]
        poll_ms: u64,
    },
    /// Completed flows per second on `handler dev` (submit, run, approve), and memory under load.
    Throughput(LoadArgs),
    /// The same flows against `handler` in serve mode with `handler taskhub` and `handler
    /// interpreter` as separate processes: CPU and memory per process under load.
    ServeThroughput(LoadArgs),
    /// The same flow on the SDKs alone with a trivial activity: ours and the official Python SDK.
    Sdk(LoadArgs),
    /// fsyncs per second on the scratch directory's file system: the task hub's commit ceiling.
    Fsync,
    /// Every part with its defaults.
    All,
}

#[derive(Args, Clone, Copy)]
struct LoadArgs {
    /// Concurrent closed-loop flows.
    #[arg(long, default_value_t = 8)]
    flows: usize,
    /// The measured window.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// How often a flow polls for the next stage.
    #[arg(long, default_value_t = 20)]
    poll_ms: u64,
}

const DEFAULT_LOAD: LoadArgs = LoadArgs {
    flows: 8,
    seconds: 20,
    poll_ms: 20,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let handler = cli.handler.unwrap_or_else(procs::default_handler);
    if !handler.exists() {
        bail!(
            "{} is missing: run `cargo build --release --bin handler --example bench` first",
            handler.display()
        );
    }
    let bench = Bench {
        handler,
        scratch: tempfile::tempdir()?,
    };
    println!(
        "machine: {} cores, load average {:.2}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        procs::load_average()
    );

    let result = match cli.part {
        Part::Startup { runs } => bench.startup(runs)?,
        Part::Latency { count, poll_ms } => bench.latency(count, poll_ms).await?,
        Part::Throughput(load) => bench.throughput(load).await?,
        Part::ServeThroughput(load) => bench.serve_throughput(load).await?,
        Part::Sdk(load) => bench.sdk(load).await?,
        Part::Fsync => bench.fsync()?,
        Part::All => json!({
            "fsync": bench.fsync()?,
            "startup": bench.startup(20)?,
            "latency": bench.latency(100, 5).await?,
            "throughput": bench.throughput(DEFAULT_LOAD).await?,
            "serve_throughput": bench.serve_throughput(DEFAULT_LOAD).await?,
            "sdk": bench.sdk(DEFAULT_LOAD).await?,
        }),
    };
    println!("RESULT {result}");
    Ok(())
}

struct Bench {
    handler: PathBuf,
    scratch: tempfile::TempDir,
}

impl Bench {
    fn startup(&self, runs: usize) -> anyhow::Result<Value> {
        let scratch = self.scratch.path().to_owned();
        let handler = self.handler.clone();
        let dev = startup::measure(runs, Duration::from_secs(2), |run, port| {
            startup::dev_command(&handler, &scratch, port, run)
        })?;
        println!("startup dev:   ready {}", stats::line(&dev.ready_ms, "ms"));
        println!(
            "idle rss dev:  {}",
            stats::line(&kib_to_mib(&dev.idle_rss_kib), "MiB")
        );

        // Serve mode with a task hub and an interpreter running, as under the Functions host.
        let (_hub, hub) = procs::taskhub(&self.handler, &self.scratch.path().join("serve-hub"))?;
        let (_pool, pool) = procs::interpreter(&self.handler)?;
        let serve = startup::measure(runs, Duration::from_secs(2), |_, port| {
            procs::serve_command(&handler, port, &hub, &pool)
        })?;
        println!(
            "startup serve: ready {}",
            stats::line(&serve.ready_ms, "ms")
        );
        println!(
            "idle rss serve: {}",
            stats::line(&kib_to_mib(&serve.idle_rss_kib), "MiB")
        );
        Ok(json!({
            "dev_ready_ms": stats::json(&dev.ready_ms),
            "dev_idle_rss_mib": stats::json(&kib_to_mib(&dev.idle_rss_kib)),
            "serve_ready_ms": stats::json(&serve.ready_ms),
            "serve_idle_rss_mib": stats::json(&kib_to_mib(&serve.idle_rss_kib)),
        }))
    }

    async fn latency(&self, count: usize, poll_ms: u64) -> anyhow::Result<Value> {
        let (dev, api) = procs::dev(&self.handler, &self.scratch.path().join("latency"), 0)?;
        let api = flows::Api::new(&api);
        // One flow first, so the measured ones do not include the first connection.
        flows::sequential(&api, 1, Duration::from_millis(poll_ms)).await?;

        let meter = CpuSampler::start(dev.pid());
        let began = Instant::now();
        let times = flows::sequential(&api, count, Duration::from_millis(poll_ms)).await?;
        let usage = meter.stop().await;
        let cpu = usage.tree_cpu;
        let client: Vec<f64> = times.iter().map(|t| t.to_awaiting_ms).collect();
        let server: Vec<f64> = times.iter().map(|t| t.server_awaiting_ms).collect();
        println!(
            "latency to awaiting_approval (client, poll {poll_ms} ms): {}",
            stats::line(&client, "ms")
        );
        println!(
            "latency to awaiting_approval (task hub timestamps): {}",
            stats::line(&server, "ms")
        );
        println!(
            "handler dev + kernels cpu: {:.2} s over {:.1} s ({:.0}% of one core)",
            cpu,
            began.elapsed().as_secs_f64(),
            100.0 * cpu / began.elapsed().as_secs_f64()
        );
        Ok(json!({
            "client_ms": stats::json(&client),
            "server_ms": stats::json(&server),
            "handler_cpu_s": cpu,
            "elapsed_s": began.elapsed().as_secs_f64(),
        }))
    }

    async fn throughput(&self, load: LoadArgs) -> anyhow::Result<Value> {
        let (dev, api) = procs::dev(&self.handler, &self.scratch.path().join("throughput"), 0)?;
        let api = flows::Api::new(&api);
        flows::sequential(&api, 1, Duration::from_millis(load.poll_ms)).await?;
        let idle_tree = procs::tree_rss_kib(dev.pid());

        let meter = CpuSampler::start(dev.pid());
        let client_before = sdk::own_cpu_seconds();
        let window = Duration::from_secs(load.seconds);
        let run = flows::closed_loops(
            &api,
            load.flows,
            window,
            Duration::from_millis(load.poll_ms),
        )
        .await;
        let client_cpu = sdk::own_cpu_seconds() - client_before;
        let usage = meter.stop().await;
        let (cpu, peak_tree) = (usage.tree_cpu, usage.peak_rss_kib);
        let per_flow = |seconds: f64| 1000.0 * seconds / run.completed.len().max(1) as f64;
        let (_, peak_process) = procs::rss_kib(dev.pid())?;

        let rate = run.completed.len() as f64 / window.as_secs_f64();
        let awaiting: Vec<f64> = run.completed.iter().map(|t| t.to_awaiting_ms).collect();
        let total: Vec<f64> = run.completed.iter().map(|t| t.total_ms).collect();
        println!(
            "throughput: {} flows completed in {} s with {} loops: {rate:.1}/s ({} errors)",
            run.completed.len(),
            load.seconds,
            load.flows,
            run.errors.len()
        );
        for error in run.errors.iter().take(3) {
            println!("  error: {error}");
        }
        println!("  to awaiting_approval: {}", stats::line(&awaiting, "ms"));
        println!("  submit to approved:   {}", stats::line(&total, "ms"));
        println!(
            "  cpu: handler dev + kernels {:.2} cores ({:.1} ms/flow, of which the handler \
             process {:.1} ms); this client {:.2} cores; machine load average {:.2}",
            cpu / window.as_secs_f64(),
            per_flow(cpu),
            per_flow(usage.root_cpu),
            client_cpu / window.as_secs_f64(),
            procs::load_average()
        );
        println!(
            "  memory: handler peak {:.1} MiB; process tree {:.1} MiB idle, {:.1} MiB peak",
            peak_process as f64 / 1024.0,
            idle_tree as f64 / 1024.0,
            peak_tree as f64 / 1024.0
        );
        Ok(json!({
            "flows": load.flows, "window_s": load.seconds, "completed": run.completed.len(),
            "per_second": rate, "errors": run.errors.len(),
            "to_awaiting_ms": stats::json(&awaiting), "total_ms": stats::json(&total),
            "handler_cpu_cores": cpu / window.as_secs_f64(),
            "cpu_ms_per_flow": per_flow(cpu),
            "handler_process_cpu_ms_per_flow": per_flow(usage.root_cpu),
            "client_cpu_cores": client_cpu / window.as_secs_f64(),
            "handler_peak_rss_mib": peak_process as f64 / 1024.0,
            "tree_rss_idle_mib": idle_tree as f64 / 1024.0,
            "tree_rss_peak_mib": peak_tree as f64 / 1024.0,
        }))
    }

    async fn serve_throughput(&self, load: LoadArgs) -> anyhow::Result<Value> {
        let (hub, hub_addr) = procs::taskhub(&self.handler, &self.scratch.path().join("load-hub"))?;
        let (pool, pool_url) = procs::interpreter(&self.handler)?;
        let port = procs::free_port();
        let command = procs::serve_command(&self.handler, port, &hub_addr, &pool_url);
        let (handler, _) = startup::time_to_ready(command, port)?;
        let api = flows::Api::new(&format!("http://127.0.0.1:{port}/api"));
        let poll = Duration::from_millis(load.poll_ms);
        flows::sequential(&api, 1, poll).await?;
        let (idle_rss, _) = procs::rss_kib(handler.pid())?;

        let meters = [handler.pid(), hub.pid(), pool.pid()].map(CpuSampler::start);
        let window = Duration::from_secs(load.seconds);
        let run = flows::closed_loops(&api, load.flows, window, poll).await;
        let mut usage = Vec::new();
        for meter in meters {
            usage.push(meter.stop().await);
        }
        let (_, handler_peak) = procs::rss_kib(handler.pid())?;
        let (_, hub_peak) = procs::rss_kib(hub.pid())?;

        let done = run.completed.len();
        let per_flow = |seconds: f64| 1000.0 * seconds / done.max(1) as f64;
        let total: Vec<f64> = run.completed.iter().map(|t| t.total_ms).collect();
        println!(
            "serve throughput: {done} flows in {} s with {} loops: {:.1}/s ({} errors)",
            load.seconds,
            load.flows,
            done as f64 / window.as_secs_f64(),
            run.errors.len()
        );
        println!("  submit to approved: {}", stats::line(&total, "ms"));
        println!(
            "  cpu per flow: handler {:.1} ms, task hub {:.1} ms, interpreter + kernels {:.1} ms",
            per_flow(usage[0].tree_cpu),
            per_flow(usage[1].tree_cpu),
            per_flow(usage[2].tree_cpu)
        );
        println!(
            "  memory: handler {:.1} MiB idle, {:.1} MiB peak; task hub peak {:.1} MiB; \
             interpreter tree peak {:.1} MiB",
            idle_rss as f64 / 1024.0,
            handler_peak as f64 / 1024.0,
            hub_peak as f64 / 1024.0,
            usage[2].peak_rss_kib as f64 / 1024.0
        );
        Ok(json!({
            "flows": load.flows, "window_s": load.seconds, "completed": done,
            "per_second": done as f64 / window.as_secs_f64(), "errors": run.errors.len(),
            "total_ms": stats::json(&total),
            "cpu_ms_per_flow": {
                "handler": per_flow(usage[0].tree_cpu),
                "taskhub": per_flow(usage[1].tree_cpu),
                "interpreter": per_flow(usage[2].tree_cpu),
            },
            "handler_idle_rss_mib": idle_rss as f64 / 1024.0,
            "handler_peak_rss_mib": handler_peak as f64 / 1024.0,
            "taskhub_peak_rss_mib": hub_peak as f64 / 1024.0,
            "interpreter_tree_peak_rss_mib": usage[2].peak_rss_kib as f64 / 1024.0,
        }))
    }

    async fn sdk(&self, load: LoadArgs) -> anyhow::Result<Value> {
        let (hub, addr) = procs::taskhub(&self.handler, &self.scratch.path().join("sdk-hub"))?;
        let window = Duration::from_secs(load.seconds);
        let poll = Duration::from_millis(load.poll_ms);

        let hub_cpu = procs::cpu_seconds(hub.pid());
        let python = sdk::python(&addr, load.flows, window, poll).await?;
        let python_hub_cpu = procs::cpu_seconds(hub.pid()) - hub_cpu;
        let hub_cpu = procs::cpu_seconds(hub.pid());
        let rust = sdk::rust(&addr, load.flows, window, poll).await?;
        let rust_hub_cpu = procs::cpu_seconds(hub.pid()) - hub_cpu;

        let mut report = json!({"flows": load.flows, "window_s": load.seconds});
        for (name, run, hub_cpu) in [
            ("python", &python, python_hub_cpu),
            ("rust", &rust, rust_hub_cpu),
        ] {
            let rate = run.completed as f64 / window.as_secs_f64();
            let per_flow = |seconds: f64| 1000.0 * seconds / run.completed.max(1) as f64;
            println!(
                "sdk {name}: {} flows in {} s = {rate:.1}/s; cpu per flow: sdk {:.2} ms, task hub \
                 {:.2} ms (sdk {:.2} cores, task hub {:.2} cores); {} errors",
                run.completed,
                load.seconds,
                per_flow(run.cpu_s),
                per_flow(hub_cpu),
                run.cpu_s / window.as_secs_f64(),
                hub_cpu / window.as_secs_f64(),
                run.errors.len()
            );
            for error in run.errors.iter().take(3) {
                println!("  error: {error}");
            }
            println!(
                "  to awaiting_approval: {}",
                stats::line(&run.to_awaiting_ms, "ms")
            );
            println!(
                "  schedule to completed: {}",
                stats::line(&run.total_ms, "ms")
            );
            report[name] = json!({
                "completed": run.completed, "per_second": rate, "errors": run.errors.len(),
                "sdk_cpu_cores": run.cpu_s / window.as_secs_f64(),
                "sdk_cpu_ms_per_flow": per_flow(run.cpu_s),
                "hub_cpu_ms_per_flow": per_flow(hub_cpu),
                "hub_cpu_cores": hub_cpu / window.as_secs_f64(),
                "to_awaiting_ms": stats::json(&run.to_awaiting_ms),
                "total_ms": stats::json(&run.total_ms),
            });
        }
        let ratio = rust.completed as f64 / python.completed.max(1) as f64;
        println!("sdk ratio rust/python: {ratio:.2}");
        report["ratio_rust_over_python"] = json!(ratio);
        Ok(report)
    }

    fn fsync(&self) -> anyhow::Result<Value> {
        use std::io::Write as _;
        let path = self.scratch.path().join("fsync-probe");
        let mut file = std::fs::File::create(&path)?;
        let count = 200;
        let began = Instant::now();
        for n in 0..count {
            file.write_all(format!("{n}\n").as_bytes())?;
            file.sync_data()?;
        }
        let per_second = count as f64 / began.elapsed().as_secs_f64();
        println!(
            "fsync: {per_second:.0} appends+fdatasync per second on {}",
            self.scratch.path().display()
        );
        Ok(json!({"per_second": per_second}))
    }
}

fn kib_to_mib(samples: &[f64]) -> Vec<f64> {
    samples.iter().map(|k| k / 1024.0).collect()
}
