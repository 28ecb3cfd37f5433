"""The engine boundary: what the CLI, traces and checks may ask of the engine that runs a lab.

Every operation is in the lab's own terms (a lab's name, a node's name, a plan),
never an engine's ids, so a second engine (Kubernetes, issue 20) can sit beside
the Docker one and the callers do not change. Only an implementation of this
protocol talks to an engine; `lab.backends.open_backend()` makes the one a
command uses. The data types here are plain: traces and checks interpret them
with pure functions that unit tests feed recorded evidence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import BinaryIO, Callable, ContextManager, Iterator, Protocol

from lab.impair import Applied, Impairment
from lab.plan.model import Plan

Events = Callable[[str, str, str], None]      # (event, subject, detail), e.g. ("ready", "lb", "1.2 s")
Progress = Callable[[str, str], None]         # (image, one line of its build)


@dataclass
class UpReport:
    created: list[str] = field(default_factory=list)
    recreated: list[str] = field(default_factory=list)
    reloaded: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    networks_created: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.recreated or self.reloaded or self.started or self.repaired
                    or self.removed or self.networks_created)


@dataclass
class DownReport:
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    link_hosts: int = 0           # machines whose links to the others were removed (kubernetes --links vxlan)


@dataclass
class NodeStatus:
    node: str
    kind: str
    addresses: dict[str, str]     # network (topology name) -> address
    state: str                    # running, exited, ...
    health: str                   # ready, not ready, "-" when not running
    container: str                # the engine's name for it (shown, never used to address it)
    id: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LabSummary:
    lab: str
    containers: int
    running: int
    file: str                     # the topology file the lab was made from ("" if unknown)
    copy: int = 0                 # a classroom copy's number (0: the lab itself)
    owner: str = ""               # whom that copy belongs to

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ExecResult:
    """A command run in a node, its output captured."""

    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        """stderr, then stdout: what a person would read, with a command's own last words (curl's
        -w line, a probe's JSON) still last. Their interleaving in time is not kept."""
        return self.stderr + self.stdout


@dataclass(frozen=True)
class CaptureRequest:
    lab: str
    node: str
    network: str | None = None        # topology network name; None: every interface
    bpf: str = ""                     # a tcpdump filter expression
    duration: float | None = None     # seconds; None: until stopped
    packets: int | None = None        # stop after this many packets
    text: bool = False                # tcpdump's one line a packet instead of pcap


@dataclass
class CaptureResult:
    interface: str
    bytes_written: int
    seconds: float


@dataclass
class NodeCapture:
    """What one node's interfaces saw while a recording ran (Backend.record)."""
    node: str
    interfaces: dict[int, str]    # interface index -> the topology's network on it (else its device, e.g. lo)
    pcap: bytes                   # tcpdump's pcap stream, Linux cooked v2 (the interface index in each packet)


class Recording(Protocol):
    def stop(self) -> list[NodeCapture]:
        """End every capture of the recording; what each node saw."""


class Backend(Protocol):
    """One engine that runs labs. Failures are LabError subclasses with a sentence a user can act on."""

    # lifecycle
    def up(self, plan: Plan, events: Events | None = None, progress: Progress | None = None) -> UpReport:
        """Make the engine match the plan (a transaction: on failure the lab is left as it was)."""

    def down(self, lab: str, volumes: bool = False) -> DownReport:
        """Remove everything of the lab (its data volumes only with volumes=True); safe to repeat."""

    def build(self, kinds: list[str], progress: Progress | None = None, force: bool = False) -> dict[str, str]:
        """Build or reuse the image of each kind; kind -> image reference."""

    # looking
    def list_labs(self) -> list[LabSummary]: ...

    def lab_exists(self, lab: str) -> bool:
        """Anything of the lab on the engine, even a leftover."""

    def status(self, lab: str) -> list[NodeStatus]:
        """One row per node, with its readiness probe run now."""

    def node_kinds(self, lab: str) -> dict[str, str]:
        """node -> kind, for the lab's nodes as the engine runs them."""

    def address_book(self, lab: str) -> dict[str, str]:
        """address -> node, every address of the lab's running nodes as the engine reports them."""

    def logs(self, lab: str, node: str, follow: bool = False, tail: int | str = "all") -> Iterator[bytes]: ...

    def read_file(self, lab: str, node: str, path: str) -> str:
        """A file inside a running node, as text."""

    # acting
    def exec(self, lab: str, node: str, command: list[str]) -> ExecResult:
        """Run a command in a node and capture its output (no terminal)."""

    def attach(self, lab: str, node: str, command: list[str]) -> int:
        """Run a command in a node with this process's terminal; its exit status."""

    def stop(self, lab: str, node: str) -> None:
        """Stop one node the way `down` does (a clean shutdown first)."""

    def start(self, lab: str, node: str) -> float:
        """Start a stopped node and wait until it is ready; the seconds it took."""

    def capture(self, request: CaptureRequest, sink: BinaryIO) -> CaptureResult:
        """A node's packets, seen from outside it, into sink (pcap, or text lines)."""

    def record(self, lab: str, filters: dict[str, str]) -> ContextManager[Recording]:
        """Capture at several nodes at once (node -> tcpdump filter), every interface of each;
        entered once every capture listens; leaving removes whatever was started for it."""

    def impair(self, lab: str, node: str, network: str, impairment: Impairment | None) -> Applied:
        """Replace the impairments of what node sends on network (None: only read them)."""

    def netem_available(self, lab: str) -> bool:
        """Whether delay, loss and the other netem impairments can work on this engine's kernel."""

    def set_link(self, lab: str, node: str, network: str, up: bool) -> tuple[str, str]:
        """Take node's interface on network down or up: (interface, state the kernel reports)."""

    def run_isolated(self, kind: str, command: list[str], archive: bytes, into: str) -> str:
        """Run command in a throwaway node of kind's image with no network, after unpacking the tar
        archive into the folder `into`; its output. Nothing of any lab is touched. With no network
        and a fixed input the output is a function of image, command and files: a backend may
        answer again from what it kept of an identical earlier run."""

    def build_browser(self, progress: Progress | None = None, force: bool = False) -> str:
        """Build or reuse the browser helper's image (Chromium, services/browser); its reference."""

    def run_browser(self, lab: str, node: str, arguments: list[str], files: dict[str, bytes],
                    progress: Progress | None = None, timeout: float = 180) -> ExecResult:
        """Run the browser helper inside node's network namespace (its addresses and routes),
        with files (name -> content) put in its folder /lab-browse first and arguments passed to
        its driver; its output. The helper is removed afterwards, on an interrupt too; it carries
        the lab's label, so `lab down` removes a leftover. Its image is built on first use."""
