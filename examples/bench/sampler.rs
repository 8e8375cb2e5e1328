//! CPU time and memory of a process tree, sampled from `/proc` while a benchmark part runs.

use std::time::Duration;

use crate::procs;

/// Samples a process tree's CPU time and resident memory every 100 ms while a part runs.
pub struct CpuSampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Usage>,
}

impl CpuSampler {
    /// Starts sampling `pid` and its descendants.
    pub fn start(pid: u32) -> CpuSampler {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut cpu = procs::TreeCpu::default();
            cpu.sample(pid);
            let (before, root_before) = (cpu.total(), cpu.of(pid));
            let mut peak_rss = 0;
            loop {
                cpu.sample(pid);
                peak_rss = peak_rss.max(procs::tree_rss_kib(pid));
                tokio::select! {
                    _ = &mut stopped => return Usage {
                        tree_cpu: cpu.total() - before,
                        root_cpu: cpu.of(pid) - root_before,
                        peak_rss_kib: peak_rss,
                    },
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        });
        CpuSampler { stop, task }
    }

    /// Stops sampling and returns what was measured.
    pub async fn stop(self) -> Usage {
        let _ = self.stop.send(());
        self.task.await.expect("the sampler ran")
    }
}

/// What a [`CpuSampler`] measured.
pub struct Usage {
    /// CPU seconds of the whole tree.
    pub tree_cpu: f64,
    /// CPU seconds of the root process alone (the handler without its Python kernels).
    pub root_cpu: f64,
    /// The tree's peak resident memory.
    pub peak_rss_kib: u64,
}
