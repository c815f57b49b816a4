//! The one integration-test binary: it runs the real `quiesce` binary
//! against real sshd VMs on loopback (the lab, `tests/lab/lab.sh`), against
//! a scripted fleet (`executor_table`), and against outside input
//! (`../shared/samples/real-world`). Output is compared exactly, or as a
//! snapshot with the times of the run masked (`snapshots/`).

mod common;

mod ansible_inventory;
mod aws_ebs;
mod awx;
mod backup;
mod bastions;
mod deploy_audit;
mod ebs_verify;
mod exact_output;
mod executor_table;
mod hooks;
mod hostile_inputs;
mod hostile_vm;
mod inventory_errors;
mod operations;
mod parsers_at_scale;
mod providers;
mod qemu_ga;
mod real_world;
mod red_team;
mod report;
mod ssh_config_oracle;
mod ssh_trust;
mod verify;
mod vmware_tools;
