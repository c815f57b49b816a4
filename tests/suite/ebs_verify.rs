//! `quiesce verify` with the aws-ebs provider: moto behind the lab's EC2
//! double, which plays the hypervisor for the data volume (its snapshot is
//! a copy of the volume's file system taken during CreateSnapshots, while
//! the instance is frozen; a volume made from it appears on the scratch VM
//! under its Nitro name when attached). Ground truth: moto's own record of
//! the volumes, the scratch VM's mounts, and the simulator's events.

use crate::aws_ebs::{AWS_ENV, Ec2, with_aws};
use crate::common::Lab;

/// vm1's IRIS writes its database on the EBS data volume (an ext4 image
/// mounted by its Nitro name); the scratch VM has VERIFY (down).
fn setup(lab: &Lab, ec2: &mut Ec2) -> (String, String) {
    crate::common::add_settings(lab, "vm1", ", vm: vm1");
    crate::common::add_settings(lab, "scratch", ", vm: scratch");
    let image = lab.path("vms/vm1/data.img").display().to_string();
    let m = lab.path("vms/vm1/data").display().to_string();
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("truncate -s 64M {image} && mkfs.ext4 -q -F {image}"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let answer = ec2.tell(&format!("disk vm1 {image}"));
    let volume = answer.split(' ').nth(1).unwrap_or_default().to_string();
    assert!(volume.starts_with("vol-"), "{answer}");
    let (code, out) = lab.sh(
        "vm1",
        &format!(
            "set -e; mkdir -p {m}; mount /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol{hex} {m}
             mkdir -p {m}/iris/mgr {m}/db/user {m}/journal
             printf '[Databases]\\nIRISSYS={m}/iris/mgr/\\nUSER={m}/db/user/\\n[Journal]\\nCurrentDirectory={m}/journal/\\nAlternateDirectory={m}/journal/\\n' > {m}/iris/iris.cpf",
            hex = &volume["vol-".len()..]
        ),
    );
    assert_eq!(code, 0, "{out}");
    for (vm, inst, kv) in [
        ("vm1", "IRIS", format!("dir={m}/iris")),
        ("vm1", "IRIS", "data=on".to_string()),
        ("scratch", "VERIFY", "status=down".to_string()),
    ] {
        assert!(lab.lab("set", &[vm, inst, &kv]).status.success());
    }
    let verify = lab.path("vms/scratch/verify").display().to_string();
    let cpf = format!(
        "[Databases]\nIRISSYS={verify}/mgr/\n[Journal]\nCurrentDirectory={verify}/journal/\n"
    );
    let (code, out) = lab.sh(
        "scratch",
        &format!("set -e; mkdir -p {verify}/mgr; printf '%s' '{cpf}' > {verify}/iris.cpf"),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        lab.lab("set", &["scratch", "VERIFY", &format!("dir={verify}")])
            .status
            .success()
    );
    let (code, out) = lab.sh(
        "vm1",
        "setsid iris writer IRIS > /dev/null 2>&1 < /dev/null & sleep 1",
    );
    assert_eq!(code, 0, "{out}");
    // The EBS playbook of the provider's tests, for vm1 only, with verify.
    let clones = lab.path("vms/scratch/clones").display().to_string();
    let path = crate::aws_ebs::playbook(lab, ec2, "");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "hosts: vm1\nverify: {{ instance: VERIFY, scratch: scratch, clone_dir: {clones}, timeout: 2m }}\n"
    ));
    std::fs::write(&path, text).unwrap();
    (path, cpf)
}

/// Nothing of the verification is left: no volume in EC2, nothing mounted
/// on the scratch VM, VERIFY down, its CPF as it was.
fn assert_torn_down(lab: &Lab, ec2: &mut Ec2, cpf: &str) {
    assert_eq!(ec2.tell("volumes"), "volumes");
    let (_, out) = lab.sh(
        "scratch",
        &format!(
            "grep -c ' {c}' /proc/self/mounts; ls -A {c}; iris qlist VERIFY | cut -d^ -f4 | cut -d, -f1; cat {v}/iris.cpf",
            c = lab.path("vms/scratch/clones").display(),
            v = lab.path("vms/scratch/verify").display()
        ),
    );
    assert_eq!(out, format!("0\ndown\n{cpf}"));
}

#[test]
fn an_ebs_backup_is_restored_on_the_scratch_instance_and_its_volumes_deleted() {
    let lab = crate::common::deployed(195, &["vm1=iris:IRIS", "scratch=iris:VERIFY"]);
    let mut ec2 = Ec2::start("127.0.195.1", &["vm1", "scratch"]);
    let (playbook, cpf) = setup(&lab, &mut ec2);
    let run = with_aws(&lab, &["backup", "-p", &playbook]);
    assert_eq!(run.code, 0, "{run:?}");
    lab.assert_truly_thawed("vm1");
    let (run_id, _) = lab.journal();

    let verified = with_aws(&lab, &["verify", &run_id, "-p", &playbook]);
    assert_eq!(verified.code, 0, "{verified:?}");
    assert!(
        verified
            .stdout
            .starts_with("verified: vm1 IRIS: restored from ")
            && verified
                .stdout
                .contains(" 1 EBS volumes from the snapshots, mounted in ")
            && verified.stdout.ends_with(": 1 of 1 instances verified\n"),
        "{verified:?}"
    );
    // On the scratch VM, not on vm1: started without user access, the
    // journal restored from the marker, the check passed.
    let events = lab.events("scratch");
    assert!(
        events.contains("VERIFY started journal=") && events.contains(" emergency nostu"),
        "{events}"
    );
    assert!(events.contains("VERIFY integrity ok=1"), "{events}");
    assert!(!lab.events("vm1").contains("VERIFY"));
    assert!(!verified.stdout.contains("warning"), "{verified:?}");
    assert_torn_down(&lab, &mut ec2, &cpf);
    assert_eq!(
        (
            ec2.calls("CreateVolume"),
            ec2.calls("AttachVolume"),
            ec2.calls("DeleteVolume")
        ),
        (1, 1, 1),
        "only the data volume holds the instance's directories"
    );

    // Killed hard while VERIFY runs on the attached volume: the volume
    // stays (mounted, so never detached), and recover removes it.
    assert!(
        lab.lab("fault", &["scratch", "VERIFY", "hang=60"])
            .status
            .success()
    );
    let child = crate::common::spawn_quiet(&lab, &["verify", &run_id, "-p", &playbook], &AWS_ENV);
    crate::verify::wait_for_start(&lab, "scratch", 2);
    let clones = lab.path("vms/scratch/clones").display().to_string();
    crate::verify::kill_hard(&lab, "scratch", &clones, child);
    let left = ec2.tell("volumes");
    assert!(left.contains("@in-use@"), "{left}");
    assert!(
        lab.lab("clear-faults", &["scratch", "VERIFY"])
            .status
            .success()
    );
    let recovered = with_aws(&lab, &["recover", &run_id]);
    assert_eq!(recovered.code, 0, "{recovered:?}");
    assert!(
        recovered
            .stdout
            .starts_with("vm1: removed the clone a killed `quiesce verify "),
        "{recovered:?}"
    );
    assert_torn_down(&lab, &mut ec2, &cpf);
}
