//! The seccomp filter of a session: a denylist compiled once with `seccompiler`.
//!
//! It refuses (EPERM) every socket family but `AF_UNIX`, so there is no network even where the
//! network namespace is missing (UDP included), and the kernel interfaces a sandbox never needs:
//! tracing other processes, mounting, new namespaces, keyrings, BPF, io_uring, modules.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

/// Syscalls refused outright.
const DENIED: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_userfaultfd,
    libc::SYS_perf_event_open,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_acct,
    libc::SYS_open_by_handle_at,
];

/// Compiles the filter for this machine's architecture; `None` where seccompiler has no
/// backend for it (the layer is then reported missing).
pub(crate) fn compile() -> Option<BpfProgram> {
    let arch = std::env::consts::ARCH.try_into().ok()?;
    let not_unix = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Ne,
        libc::AF_UNIX as u64,
    )
    .ok()?;

    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED.iter().map(|&s| (s, vec![])).collect();
    rules.insert(
        libc::SYS_socket,
        vec![SeccompRule::new(vec![not_unix]).ok()?],
    );

    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .ok()?;
    filter.try_into().ok()
}

/// The program as the raw `struct sock_filter` array that `bwrap --seccomp FD` reads.
pub(crate) fn to_bytes(program: &BpfProgram) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for instruction in program {
        bytes.extend_from_slice(&instruction.code.to_ne_bytes());
        bytes.push(instruction.jt);
        bytes.push(instruction.jf);
        bytes.extend_from_slice(&instruction.k.to_ne_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_to_whole_instructions() {
        let program = compile().expect("seccompiler supports this architecture");
        let bytes = to_bytes(&program);
        assert!(program.len() > DENIED.len());
        assert_eq!(bytes.len(), program.len() * 8);
    }
}
