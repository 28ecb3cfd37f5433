"""`lab export`: a topology rendered for other tools (no running lab needed)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import click

from lab.cli.common import TOPOLOGY_ARG, OutputFile, out
from lab.export.compose import compose_files, compose_text, secret_paths
from lab.export.kubernetes import NAMESPACE, manifest_files
from lab.export.kubernetes_links import LINK_MODES
from lab.plan import make_plan
from lab.state import ensure_lab_state, private_directory, write_secret_file
from lab.topology import load_topology


def _write_files(base: Path, files: dict[str, str], secrets: set[str]) -> None:
    """The nodes' /lab files under base, the lab's directory 0700 (other users of the host
    see nothing); keys and passwords 0600. Each node's directory is its /lab and stays
    traversable: non-root services read their settings there (the app its db/host)."""
    for relative, content in files.items():
        parts = PurePosixPath(relative).parts
        private_directory(base.joinpath(*parts[:2]))     # compose.d/LAB
        target = base / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative in secrets:
            write_secret_file(target, content)
        else:
            target.write_text(content, encoding="utf-8")


@click.group(name="export")
def export_group() -> None:
    """Render a lab for other tools."""


@export_group.command(name="compose")
@TOPOLOGY_ARG
@click.option("-o", "--output", type=OutputFile(), default=Path("compose.yaml"),
              show_default=True, help="The compose file to write.")
@click.option("--no-files", is_flag=True, help="Write only the compose file, not the nodes' /lab files.")
def export_compose(file: Path | None, output: Path, no_files: bool) -> None:
    """Write a compose file (and each node's /lab files beside it) for plain docker compose."""
    lab = load_topology(file)
    plan = make_plan(lab, ensure_lab_state(lab))
    files_dir = f"compose.d/{lab.name}"
    source = str(file) if file else "topology/default.yaml"
    output.write_text(compose_text(plan, files_dir, source), encoding="utf-8")
    if not no_files:
        _write_files(output.parent, compose_files(plan, files_dir), secret_paths(plan, files_dir))
    out.print(f"wrote {output}" + ("" if no_files else f" and {output.parent / files_dir}/"), highlight=False)


def _namespace(value: str | None) -> str | None:
    if value is not None and not NAMESPACE.match(value):
        raise click.BadParameter(f"{value!r} is not a namespace name: use up to 63 lowercase letters, "
                                 "digits and '-', starting and ending with a letter or digit")
    return value


@export_group.command(name="kubernetes")
@TOPOLOGY_ARG
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("kubernetes"),
              show_default=True, help="The directory to write the manifests into (made if missing).")
@click.option("-n", "--namespace", default=None, callback=lambda _c, _p, value: _namespace(value),
              help="The lab's namespace. [default: lab-NAME]")
@click.option("--image-prefix", default="", metavar="REGISTRY/",
              help="Put before every image name (lab/<service>:latest), for images pushed to a registry.")
@click.option("--links", type=click.Choice(LINK_MODES), default="bridge", show_default=True,
              help="How a lab network spans cluster nodes: bridge (one node), vxlan (bridges joined across nodes).")
def export_kubernetes(file: Path | None, output: Path, namespace: str | None, image_prefix: str,
                      links: str) -> None:
    """Write Kubernetes manifests (Multus networks, one Deployment per node) for kubectl apply."""
    lab = load_topology(file)
    plan = make_plan(lab, ensure_lab_state(lab))
    source = str(file) if file else "topology/default.yaml"
    output.mkdir(parents=True, exist_ok=True)
    written = manifest_files(plan, source, namespace, image_prefix, links)
    for name, text in written.items():
        # Secrets are inside: the directory is the user's alone, like compose.d/.
        write_secret_file(output / name, text)
    out.print(f"wrote {len(written)} files to {output}/ (apply in order: kubectl apply -f {output}/)",
              highlight=False)


COMMANDS = [export_group]
