"""The same rollout as `nestcustom deploy`, written the way an Ansible user would: the
baseline of bench/deploy.py. ansible-core, `serial:` batches, pipelining and
ControlPersist on, `raw` tasks only (NestOS has no Python, so `ansible.builtin.reboot`,
`wait_for_connection` and every other module are out), the same digest checks.

Two waits for the reboot are kept:
- LIGHT (the baseline the goals are measured against): the lightest idiomatic one, a
  `raw` task over the connection Ansible already holds that reads the boot id, with
  `until`/`retries` for the old boot id and the ssh connection's
  `reconnection_retries` for the moments the host does not answer;
- HEAVY (the earlier baseline): a local `ssh` run by `ansible.builtin.command`
  delegated to localhost once a second per host, as `ansible.builtin.reboot`'s own loop
  does; it costs Ansible a local module run per poll."""

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
#WAIT#
    - name: verify the booted digest
      ansible.builtin.assert:
        that: (boot.stdout.split('==')[1] | from_json).deployments[0]['container-image-reference-digest'] == digest
      when: rebased is changed
"""

# Placed into PLAYBOOK after it is formatted (their Jinja braces stay single).
LIGHT = """\
    - name: wait for a new boot id over Ansible's own connection (raw; the ssh connection's reconnection_retries ride out the reboot, until/retries the old boot id)
      raw: cat /proc/sys/kernel/random/boot_id; echo ==; rpm-ostree status --booted --json
      register: boot
      changed_when: false
      when: rebased is changed
      until: (boot.stdout.split('==')[0] | trim) != old_boot
      retries: 600
      delay: 1
"""
HEAVY = """\
    - name: wait for a new boot id with a local ssh once a second, delegated to localhost, as ansible.builtin.reboot's own loop polls (the earlier, heavier baseline)
      ansible.builtin.command:
        argv: [ssh, -p, "{{ ansible_port }}", -i, "{{ ansible_ssh_private_key_file }}", -o, "UserKnownHostsFile={known_hosts}",
               -o, BatchMode=yes, -o, ConnectTimeout=5, -o, ControlMaster=auto, -o, ControlPersist=60s,
               -o, "ControlPath={tmp}/cp/wait-%C", "root@{{ ansible_host }}",
               "cat /proc/sys/kernel/random/boot_id; echo ==; rpm-ostree status --booted --json"]
      delegate_to: localhost
      register: boot
      changed_when: false
      failed_when: false
      when: rebased is changed
      until: boot.rc == 0 and (boot.stdout.split('==')[0] | trim) != old_boot
      retries: 600
      delay: 1
"""
WAITS = {"light": LIGHT, "heavy": HEAVY}

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
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o BatchMode=yes -o ConnectTimeout=5
control_path_dir = {tmp}/cp
retries = 10
"""


def write_project(
    workdir: Path,
    fleet: HostFleet,
    pinned: str,
    digest: str,
    arch: str,
    batch: int,
    wait: str = "light",
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
        ).replace(
            "#WAIT#\n",
            WAITS[wait]
            .replace("{known_hosts}", str(fleet.known_hosts))
            .replace("{tmp}", str(workdir)),
        )
    )
    return config, playbook
