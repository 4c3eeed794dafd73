"""The build helper's `exec` and `facts`, run by a real sh in a throwaway root: the
{{value}} tokens a RUN step's arguments carry, filled in from the image being built."""

from __future__ import annotations

import pytest

from tests.universe.helper_root import HelperRoot

KVER = "5.10.0-182.0.0.95.oe2203sp2.x86_64"


def one_kernel(box: HelperRoot, kver: str = KVER) -> None:
    box.write(f"/usr/lib/modules/{kver}/vmlinuz", "kernel image\n")


def test_each_token_is_filled_in_and_each_argument_stays_one(box: HelperRoot) -> None:
    one_kernel(box)
    done = box.helper(
        "exec", "printf", "[%s]\\n", "{{os.id}}-{{os.version}}", "dist={{dist}} arch={{arch}}",
        "/usr/lib/modules/{{kernel}}/extra", "plain", "",
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "[nestos-22.03]",
        "[dist=.oe2203sp2 arch=x86_64]",
        f"[/usr/lib/modules/{KVER}/extra]",
        "[plain]",
        "[]",
    ]


def test_values_are_data_never_code(box: HelperRoot) -> None:
    box.write("/etc/os-release", 'ID=nestos\nVERSION_ID="$(touch /tmp/ran) `id` ;x"\n')
    done = box.helper("exec", "printf", "%s", "{{os.version}}")
    assert (done.returncode, done.stdout) == (0, "$(touch /tmp/ran) `id` ;x")
    assert not (box.root / "tmp/ran").exists()


def test_text_without_a_closing_brace_pair_is_left_as_it_is(box: HelperRoot) -> None:
    done = box.helper("exec", "printf", "%s|", "{{os.id", "a}}b", "{{}x}}", "{{os.id}}}")
    assert done.returncode == 1  # {{}x}} names the value "}x"
    assert done.stderr == "nestcustom: unknown value {{}x}}\n"
    done = box.helper("exec", "printf", "%s|", "{{os.id", "a}}b", "{ {os.id} }", "{{os.id}}}")
    assert (done.returncode, done.stdout) == (0, "{{os.id|a}}b|{ {os.id} }|nestos}|")


def test_the_program_runs_in_place_of_the_helper_with_its_exit_status(box: HelperRoot) -> None:
    done = box.helper("exec", "sh", "-c", 'echo "$0 $1"; exit 7', "{{os.id}}", "two words")
    assert (done.returncode, done.stdout) == (7, "nestos two words\n")


def test_no_program_is_an_error(box: HelperRoot) -> None:
    done = box.helper("exec")
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "nestcustom: exec: no program\n")


@pytest.mark.parametrize("kernels", [0, 2])
def test_kernel_needs_exactly_one_vmlinuz(box: HelperRoot, kernels: int) -> None:
    for n in range(kernels):
        one_kernel(box, f"5.10.{n}")
    box.write("/usr/lib/modules/5.10.9-no-image/modules.dep", "")  # no vmlinuz: not a kernel
    done = box.helper("exec", "echo", "{{kernel}}")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"nestcustom: found {kernels} kernels (a vmlinuz under /usr/lib/modules/*/); "
        "{{kernel}} needs exactly one\n"
    )


def test_kernel_is_the_directory_name_of_the_only_vmlinuz(box: HelperRoot) -> None:
    one_kernel(box)
    box.write("/usr/lib/modules/5.10.9-no-image/modules.dep", "")
    done = box.helper("exec", "printf", "%s", "{{kernel}}")
    assert (done.returncode, done.stdout) == (0, KVER)


def test_os_release_falls_back_to_usr_lib(box: HelperRoot) -> None:
    (box.root / "etc/os-release").unlink()
    box.write("/usr/lib/os-release", 'ID="newstart"\nVERSION_ID=6.06\n')
    done = box.helper("exec", "printf", "%s %s", "{{os.id}}", "{{os.version}}")
    assert (done.returncode, done.stdout) == (0, "newstart 6.06")


def test_the_first_line_of_a_field_counts_and_only_whole_names_match(box: HelperRoot) -> None:
    box.write("/etc/os-release", "VERSION_ID_LIKE=9\nID_LIKE=rhel\nID=first\nID=second\n")
    done = box.helper("exec", "printf", "%s", "{{os.id}}")
    assert (done.returncode, done.stdout) == (0, "first")
    done = box.helper("exec", "printf", "%s", "{{os.version}}")
    assert (done.returncode, done.stderr) == (1, "nestcustom: os-release has no VERSION_ID\n")


def test_no_os_release_at_all(box: HelperRoot) -> None:
    box.remove("/etc/os-release")
    box.remove("/usr/lib/os-release")
    done = box.helper("exec", "echo", "{{os.id}}")
    assert (done.returncode, done.stderr) == (1, "nestcustom: the image has no os-release\n")


def test_an_unknown_value_is_named(box: HelperRoot) -> None:
    done = box.helper("exec", "echo", "ok {{os.id}} {{recipe.name}}")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "nestcustom: unknown value {{recipe.name}}\n"


def test_no_dist_macro_is_an_empty_value(box: HelperRoot) -> None:
    (box.root / "etc/rpm/macros").write_text("%_dbpath /usr/share/rpm\n")
    done = box.helper("exec", "printf", "[%s]", "{{dist}}")
    assert (done.returncode, done.stdout) == (0, "[]")


def test_an_image_without_rpm_has_an_empty_dist(box: HelperRoot) -> None:
    box.remove("/usr/bin/rpm")
    done = box.helper("exec", "printf", "[%s]", "{{dist}}")
    assert (done.returncode, done.stdout, done.stderr) == (0, "[]", "")


def test_facts_writes_every_value_the_image_knows(box: HelperRoot) -> None:
    one_kernel(box)
    (box.root / "out").mkdir()
    (box.root / "out/facts").write_text("stale=1\n")
    done = box.helper("facts", "/out")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert (box.root / "out/facts").read_text() == (
        f"kernel={KVER}\nos.id=nestos\nos.version=22.03\ndist=.oe2203sp2\narch=x86_64\n"
    )


def test_facts_leaves_out_what_the_image_cannot_say(box: HelperRoot) -> None:
    box.write("/etc/os-release", "ID=nestos\n")  # no VERSION_ID, and no kernel
    done = box.helper("facts", "/new/dir")
    assert (done.returncode, done.stderr) == (0, "")
    assert (
        box.root / "new/dir/facts"
    ).read_text() == "os.id=nestos\ndist=.oe2203sp2\narch=x86_64\n"


def test_facts_reads_the_image_even_where_a_facts_file_exists(box: HelperRoot) -> None:
    box.write("/nestcustom-facts/facts", "os.id=from-the-file\n")
    done = box.helper("facts", "/out")
    assert done.returncode == 0
    assert "os.id=nestos\n" in (box.root / "out/facts").read_text()


def test_a_builder_stage_reads_the_base_images_values_from_its_facts(box: HelperRoot) -> None:
    # In a builder stage (another image), the values are the base image's: the facts
    # stage wrote them, and the builder's own os-release and kernels do not count.
    box.write("/nestcustom-facts/facts", f"kernel={KVER}\nos.id=nestos\nos.version=22.03=x\n")
    box.write("/etc/os-release", "ID=debian\nVERSION_ID=12\n")
    done = box.helper("exec", "printf", "%s|", "{{kernel}}", "{{os.id}}", "{{os.version}}")
    assert (done.returncode, done.stdout) == (0, f"{KVER}|nestos|22.03=x|")
    done = box.helper("exec", "printf", "%s|", "{{arch}}")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "nestcustom: {{arch}} is not known in the base image\n"


def test_no_command_and_an_unknown_command(box: HelperRoot) -> None:
    done = box.helper()
    assert (done.returncode, done.stderr) == (
        1,
        "nestcustom: usage: build.sh exec|clamp|rpm-list|facts|kmods|initramfs|check|files|repos|"
        "remove-matching|selinux ...\n",
    )
    done = box.helper("frobnicate", "x")
    assert (done.returncode, done.stderr) == (1, "nestcustom: unknown command frobnicate\n")
