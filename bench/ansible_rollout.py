"""The same rollout as `nestcustom deploy`, written the way an Ansible user would: the
baseline of bench/deploy.py. ansible-core, `serial:` batches, pipelining and
ControlPersist on, `raw` tasks (NestOS has no Python), a boot-id wait as
`ansible.builtin.reboot` does it, the same digest checks."""

from __future__ import annotations

import json
from pathlib import Path

from tests.universe.fleet.harness import HostFleet

PLAYBOOK = """\
- hosts: fleet
  gather_facts: false
  serial: {batch}
  vars:
    ref: "ostree-unverified-registry:{pinned}"
    digest: "{digest}"
  tasks:
    - name: preflight (status, boot id, architecture)
      raw: rpm-ostree status --json; echo ==boot; cat /proc/sys/kernel/random/boot_id; echo ==arch; uname -m
      register: pre
      changed_when: false
    - name: read the preflight
      ansible.builtin.set_fact:
        status: "{{{{ pre.stdout.split('==boot')[0] | from_json }}}}"
        old_boot: "{{{{ pre.stdout.split('==boot')[1].split('==arch')[0] | trim }}}}"
        arch: "{{{{ pre.stdout.split('==arch')[1] | trim }}}}"
    - name: refuse a running transaction or another architecture
      ansible.builtin.assert:
        that: [status.transaction is none, arch == "{arch}"]
    - name: rebase
      raw: rpm-ostree rebase {{{{ ref }}}}
      when: (status.deployments | selectattr('booted') | first).get('container-image-reference-digest') != digest
      register: rebased
    - name: check the staged digest
      raw: rpm-ostree status --json
      register: staged
      changed_when: false
      when: rebased is changed
      failed_when: (staged.stdout | from_json).deployments[0]['container-image-reference-digest'] != digest
    - name: reboot
      raw: systemctl reboot
      when: rebased is changed
      ignore_unreachable: true  # the connection may drop as the host goes down
      failed_when: false
    - name: wait for a new boot id, as ansible.builtin.reboot does (its own loop survives the dropped connection; raw in an until loop does not, and reboot itself needs Python on the host)
      ansible.builtin.command:
        argv: [ssh, -p, "{{{{ ansible_port }}}}", -i, "{{{{ ansible_ssh_private_key_file }}}}", -o, "UserKnownHostsFile={known_hosts}",
               -o, BatchMode=yes, -o, ConnectTimeout=5, -o, ControlMaster=auto, -o, ControlPersist=60s,
               -o, "ControlPath={tmp}/cp/wait-%C", "root@{{{{ ansible_host }}}}",
               "cat /proc/sys/kernel/random/boot_id; echo ==; rpm-ostree status --booted --json"]
      delegate_to: localhost
      register: boot
      changed_when: false
      failed_when: false
      when: rebased is changed
      until: boot.rc == 0 and (boot.stdout.split('==')[0] | trim) != old_boot
      retries: 600
      delay: 1
    - name: verify the booted digest
      ansible.builtin.assert:
        that: (boot.stdout.split('==')[1] | from_json).deployments[0]['container-image-reference-digest'] == digest
      when: rebased is changed
"""

CONFIG = """\
[defaults]
forks = {batch}
gathering = explicit
host_key_checking = True
retry_files_enabled = False
stdout_callback = default
local_tmp = {tmp}/local
[ssh_connection]
pipelining = True
usetty = False
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o BatchMode=yes
control_path_dir = {tmp}/cp
"""


def write_project(
    workdir: Path, fleet: HostFleet, pinned: str, digest: str, arch: str, batch: int
) -> tuple[Path, Path]:
    """(ansible.cfg, playbook) in `workdir`, with the fleet as the inventory."""
    workdir.mkdir(parents=True, exist_ok=True)
    hosts = {
        h.name: {
            "ansible_host": h.address,
            "ansible_port": h.port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(fleet.client_key),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={fleet.known_hosts}",
        }
        for h in fleet.hosts
    }
    (workdir / "inventory.json").write_text(json.dumps({"fleet": {"hosts": hosts}}))
    config = workdir / "ansible.cfg"
    config.write_text(CONFIG.format(batch=batch, tmp=workdir))
    playbook = workdir / "rollout.yml"
    playbook.write_text(
        PLAYBOOK.format(
            batch=batch,
            pinned=pinned,
            digest=digest,
            arch=arch,
            known_hosts=fleet.known_hosts,
            tmp=workdir,
        )
    )
    return config, playbook
