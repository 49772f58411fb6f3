"""The third red team's attacks (issue 22): each graded between two honest classmates in the same
slot, one after another, so that what it leaves, breaks or takes is seen by the next.

Each attack is the base of tests/hostile/cases.py (honest get_WOV and embedding) and its own code,
with what its target items must get; `SETUP_BOUND` attacks could depend on the set-up a grader is
started in (uids, files, processes, limits) and run in all three, the others in one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tests.hostile.cases import BASE

# what every file of the class is graded on: the attacks' targets and the honest items
ITEMS = ("get_activations", "get_ln_fit", "get_pre_final_ln_dir", "get_out_by_components", "get_pre_20_dir",
         "get_out_by_neuron", "get_post_final_ln_dir", "cos_sim_with_MLP_weights", "get_WOV", "embedding")
TMP_BYTES, SHM_BYTES = 256 * 1024**2, 64 * 1024**2  # grader.config.Limits: the sandbox's /tmp and /dev/shm

# appended to each honest classmate (the filled-in template): it looks for what an attacker before
# it in its slot may have left, and fails get_WOV if it finds anything
LOOKS = '''
# %%
import ctypes as _ctypes
import os
import sys as _sys


def _leftovers():
    # run when get_WOV is graded (a module-level check would be left out of a lean run): what a
    # classmate left in the writable places and the System V IPC namespace this worker shares.
    # The grader's own mounts are not a classmate's: its folders, and its code and Python wherever
    # they are installed (a checkout under /tmp is bound in at its path)
    libc = _ctypes.CDLL(None, use_errno=True)
    left = [f"{d}/{n}" for d in ("/tmp", "/dev/shm", "/dev/mqueue") if os.path.isdir(d) for n in os.listdir(d)
            if not n.startswith("bracket-")
            and not any(p == f"{d}/{n}" or p.startswith(f"{d}/{n}/") for p in _sys.path + [_sys.prefix])]
    if libc.shmget(0x5EED, 0, 0) != -1:
        left.append("a System V shared-memory segment")
    if libc.semget(0x5EED, 0, 0) != -1:
        left.append("a System V semaphore set")
    if libc.msgget(0x5EED, 0) != -1:
        left.append("a System V message queue")
    return left


_own_get_WOV = get_WOV


def get_WOV(model, layer, head):
    left = _leftovers()
    if left:
        raise RuntimeError(f"left by a classmate: {left}")
    return _own_get_WOV(model, layer, head)
'''


@dataclass(frozen=True)
class Attack:
    name: str
    attack: str
    code: str
    expected: dict[str, tuple[str, ...]]  # item -> the statuses it may get (every other item: as the honest file)
    setup_bound: bool = False  # could its outcome depend on the set-up? then it runs in all three
    says: dict[str, str] = field(default_factory=dict)  # item -> words its feedback must hold
    file_name: str = ""  # when not f"{name}.py"


HELPER_CHANNEL = '''
import gc
from grader.worker.helpers import proxy


def get_activations(model, toks, names):  # wrong on purpose: the items that call it get a second look
    return {n: t.zeros(1) for n in ([names] if isinstance(names, str) else names)}


def _asked(name, *args):
    """In the second look, the very item being graded, asked of the trusted side through the
    stand-ins' own connection; before it, nothing (a wrong answer, so that there is a second look)."""
    if getattr(globals()["get_activations"], "__module__", "") != "grader.worker.helpers":
        return None
    asker = next((o for o in gc.get_objects() if type(o).__name__ in ("Asker", "Questions")), None)
    factory = next((o for o in gc.get_objects() if type(o).__name__ == "InputFactory" and o.origins), None)
    return proxy(name, None, asker, factory)(*args)


def get_ln_fit(model, data, layernorm, seq_pos=None):
    got = _asked("get_ln_fit", model, data, layernorm, seq_pos)
    return (None, 0.0) if got is None else got


def get_pre_final_ln_dir(model, data):
    got = _asked("get_pre_final_ln_dir", model, data)
    return t.zeros(model.cfg.d_model) if got is None else got


def get_out_by_components(model, data):
    got = _asked("get_out_by_components", model, data)
    return t.zeros(1) if got is None else got


def get_pre_20_dir(model, data):
    got = _asked("get_pre_20_dir", model, data)
    return t.zeros(model.cfg.d_model) if got is None else got


def get_out_by_neuron(model, data, layer, seq=None):
    got = _asked("get_out_by_neuron", model, data, layer, seq)
    return t.zeros(1) if got is None else got
'''

FORGED_TURNS = '''
import pickle

def get_activations(model, toks, names):  # wrong on purpose: the items that call it get a second look
    return {n: t.zeros(1) for n in ([names] if isinstance(names, str) else names)}


def _steal(stash):
    # In the second look, before the submission says it is ready: claim that the items to be
    # graded in this run are over, that get_pre_20_dir (whose granted helpers they are) is being
    # computed, ask for their answers on the grading's own cases (read from the worker's frames),
    # keep them in the sandbox's /tmp and end the process. The statement is skipped and the
    # submission run again, which grades them for real: they return what was kept.
    frame, job = sys._getframe(), None
    while frame is not None and job is None:
        job = frame.f_locals.get("job") if isinstance(frame.f_locals.get("job"), dict) else None
        frame = frame.f_back
    items = {i["id"]: i for i in job.get("items", ())} if job is not None else {}
    carrier = items.get("get_pre_20_dir")
    if carrier is None or not carrier.get("reference_helpers") or os.path.exists(stash):  # not a second look
        return stash
    from grader.protocol import decode
    from grader.worker.imported import _CONNECTION

    q = _CONNECTION["questions"]
    targets = [i for i in carrier.get("reference_helpers") or () if i in items]
    for i in targets:
        q.emit("start", item=i)
        q.emit("end", item=i, seconds=0)
    q.emit("start", item="get_pre_20_dir")
    kept = {}
    for i in targets:
        for case in items[i]["cases"]:
            for n, args in enumerate(case["each"] or [case["args"]]):
                reply = q.ask(function=i, args=args, kwargs=case["kwargs"])
                if reply.get("ok"):
                    kept[i, case["label"], n] = decode(reply["value"], files=q.files)
    with open(stash, "wb") as f:
        pickle.dump(kept, f)
    os._exit(0)


_STASH = "/tmp/.answers"
_STASH = _steal(_STASH)  # a name the items read, so that a lean run keeps the statement (and skips only it)


def _kept(name):
    try:
        with open(_STASH, "rb") as f:
            kept = pickle.load(f)
    except OSError:
        return None
    frame = sys._getframe()
    while frame is not None and "case" not in frame.f_locals:
        frame = frame.f_back
    case = frame.f_locals["case"]
    n = case["each"].index(frame.f_locals["each_args"]) if case["each"] else 0
    value = kept.get((name, case["label"], n))
    from grader.worker.helpers import to_live
    return None if value is None else to_live(value, None, "cpu")


def get_ln_fit(model, data, layernorm, seq_pos=None):
    return _kept("get_ln_fit") or (None, 0.0)


def get_pre_final_ln_dir(model, data):
    got = _kept("get_pre_final_ln_dir")
    return t.zeros(model.cfg.d_model) if got is None else got


def get_pre_20_dir(model, data):
    return t.zeros(model.cfg.d_model)
'''

BYTECODE = '''
import glob, marshal, sys
_places = {os.path.dirname(os.path.dirname(os.path.abspath(__import__("reference").__file__))), *sys.path}
_stolen = []
for _place in sorted(p for p in _places if p):
    for _pyc in glob.glob(os.path.join(_place, "reference", "__pycache__", "*.pyc")):
        try:
            _ns = {"__name__": "stolen"}
            exec(marshal.loads(open(_pyc, "rb").read()[16:]), _ns)
        except Exception:
            continue
        if "get_post_final_ln_dir" in _ns:
            _stolen.append(_pyc)
            get_post_final_ln_dir = _ns["get_post_final_ln_dir"]
'''

QUESTIONS = '''
import gc
_asker = next((o for o in gc.get_objects() if type(o).__name__ in ("Asker", "Questions")), None)
_vector = {"$tensor": {"dtype": "float32", "shape": [56], "b64": "A" * 300}}
_too_big = [  # questions no honest stand-in asks: sizes counted in every form before any work
    ("is_balanced_vectorized_return_both", [{"$toks": [0, 100_000]}], {}),
    ("is_balanced_vectorized", [{"$tokrow": [[0, 100_000], 0]}], {}),
    ("get_out_by_components", [{"$model": "main"}, {"$data": [0, 100_000]}], {}),
    ("get_out_by_neuron", [{"$model": "main"}, {"$data": [0, 3000]}, 0], {"seq": None}),
    ("get_activations", [{"$model": "main"}, {"$toks": [0, 3000]}, ["blocks.0.attn.hook_result"] * 60], {}),
    ("cos_sim_with_MLP_weights", [{"$model": "main"}, {"$tensor": {"dtype": "float32", "shape": [9000, 5000],
                                                                   "b64": ""}}, 0], {}),
    ("avg_squared_cos_sim", [_vector], {"n_samples": 10**9}),
]
_answered = []
for _function, _args, _kwargs in _too_big if _asker is not None else []:
    try:
        _reply = _asker.ask(function=_function, args=_args, kwargs=_kwargs)
    except Exception as _e:
        _reply = {"ok": False, "error": str(_e)}
    if _reply.get("ok"):
        _answered.append(_function)


def get_post_final_ln_dir(model):
    if _asker is None or _answered:
        raise RuntimeError(f"answered: {_answered}")  # a bound that did not hold
    return t.zeros(model.cfg.d_model)  # wrong: the questions were the point
'''

FLOOD = '''
import gc
_channel = next((o for o in gc.get_objects() if type(o).__name__ == "Channel"), None)


def _send(line):
    view = memoryview(line)
    while view:
        view = view[os.write(_channel._fd, view):]


def get_post_final_ln_dir(model):
    unknown = b'{"kind":"nonsense","pad":"' + b"x" * (30 << 20) + b'"}' + b"\\n"
    for _ in range(10):  # 300 MB of messages of no known kind
        _send(unknown)
    values = (b'{"kind":"case","item":"get_post_final_ln_dir","case":"model","ok":true,"value":['
              + b"0," * (6 << 20) + b"0]}\\n")
    for _ in range(10):  # results of this item as large as a message may be, one after another
        _send(values)
    return t.zeros(model.cfg.d_model)
'''

STORAGE = '''
def _fill(folder, total, chunk=32 << 20):
    written = 0
    for i in range(total // chunk):
        try:
            with open(os.path.join(folder, f"fill-{i}"), "wb") as f:
                f.write(b"\\1" * chunk)
            written += chunk
        except OSError:
            break
    return written


_in_tmp, _in_shm = _fill("/tmp", 1 << 30), _fill("/dev/shm", 1 << 30)


def get_post_final_ln_dir(model):
    if _in_tmp > TMP_BYTES or _in_shm > SHM_BYTES:
        raise RuntimeError(f"wrote {_in_tmp} bytes into /tmp and {_in_shm} into /dev/shm")  # a bound that did not hold
    return t.zeros(model.cfg.d_model)  # wrong: the writing was the point


def cos_sim_with_MLP_weights(model, v, layer):
    _fill(os.getcwd(), 3 << 30)  # its own folder, past the storage limit
    return t.zeros(model.cfg.d_mlp)
'''

IPC = '''
import ctypes


def _leave():  # called at the top level and when graded: a lean run keeps calls, not unused names
    libc = ctypes.CDLL(None, use_errno=True)
    made = [libc.shmget(0x5EED, 1 << 30, 0o1666), libc.semget(0x5EED, 4, 0o1666), libc.msgget(0x5EED, 0o1666)]
    assert -1 not in made, f"could not leave System V objects: {made}"  # IPC_CREAT: 1 GiB, for whoever comes next
    with open("/dev/shm/left-for-the-next", "w") as f:
        f.write("x")


_leave()


def get_post_final_ln_dir(model):
    _leave()
    return t.zeros(model.cfg.d_model)  # wrong: the leftovers were the point
'''

SIGNALS = '''
import signal
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
            signal.SIGALRM, signal.SIGTSTP, signal.SIGPIPE, signal.SIGKILL, signal.SIGSTOP)


def _signal_the_warm_worker():
    for sig in _SIGNALS:
        try:
            os.kill(1, sig)  # in its sandbox, the warm worker is PID 1
        except OSError:
            pass


_signal_the_warm_worker()


def get_post_final_ln_dir(model):
    _signal_the_warm_worker()
    time.sleep(0.5)
    return t.zeros(model.cfg.d_model)
'''

ESCAPES = '''
_ESCAPES = "\\x1b[2J\\x1b[H\\x1b]0;graded by me\\x07\\x1b[10A\\r\\x08\\u202e"
print("output:" + _ESCAPES)


def get_post_final_ln_dir(model):
    raise RuntimeError("the screen is mine" + _ESCAPES)
'''

ATTACKS = [
    Attack("helper_channel", "writes none of five function items: in the second look where the reference "
           "stands in for a helper, each asks the trusted side for itself through the stand-ins' connection",
           HELPER_CHANNEL, {**{i: ("missing", "failed") for i in ("get_ln_fit", "get_pre_final_ln_dir",
                                                                   "get_out_by_components", "get_pre_20_dir",
                                                                   "get_out_by_neuron")},
                            "get_activations": ("failed",), "get_post_final_ln_dir": ("missing",),
                            "cos_sim_with_MLP_weights": ("missing",)}),
    Attack("forged_turns", "says that the items it is graded on are over and that an item they are granted to "
           "is being computed, asks for their answers, keeps them in /tmp and ends the process, so that the run "
           "again without that statement returns them", FORGED_TURNS,
           {**{i: ("missing",) for i in ("get_ln_fit", "get_pre_final_ln_dir", "get_out_by_components",
                                          "get_out_by_neuron", "get_post_final_ln_dir", "cos_sim_with_MLP_weights")},
            "get_activations": ("failed",), "get_pre_20_dir": ("failed",)},
           says={"get_ln_fit": "taken from the course", "get_pre_final_ln_dir": "taken from the course"}),
    Attack("reference_bytecode", "loads the reference solutions' bytecode wherever Python may have written it",
           BYTECODE, {"get_post_final_ln_dir": ("missing",), **{i: ("missing",) for i in ITEMS[:6]},
                      "cos_sim_with_MLP_weights": ("missing",)}, setup_bound=True),
    Attack("unbounded_questions", "asks the trusted side about 100,000 strings through tokens, token rows and data "
           "ranges, and for answers of billions of numbers", QUESTIONS,
           {"get_post_final_ln_dir": ("failed",), **{i: ("missing",) for i in ITEMS[:6]},
            "cos_sim_with_MLP_weights": ("missing",)}),
    Attack("message_flood", "sends 300 MB of messages of no known kind, then results as large as a message may be",
           FLOOD, {"get_post_final_ln_dir": ("error",), **{i: ("missing",) for i in ITEMS[:6]},
                   "cos_sim_with_MLP_weights": ("missing",)},
           says={"get_post_final_ln_dir": "sent more results than the grader reads"}),
    Attack("storage", "writes 1 GiB into /tmp, /dev/shm and 3 GiB into its own folder", STORAGE,
           {"get_post_final_ln_dir": ("failed",), "cos_sim_with_MLP_weights": ("error",),
            **{i: ("missing",) for i in ITEMS[:6]}}, setup_bound=True,
           says={"cos_sim_with_MLP_weights": "the storage limit"}),
    Attack("ipc_leftovers", "leaves a 1 GiB System V shared-memory segment, a semaphore set, a message queue and a "
           "file in /dev/shm for the next classmate", IPC,
           {"get_post_final_ln_dir": ("failed",), **{i: ("missing",) for i in ITEMS[:6]},
            "cos_sim_with_MLP_weights": ("missing",)}, setup_bound=True),
    Attack("signals_the_warm_worker", "sends every signal it can to the warm worker (PID 1 of its sandbox)", SIGNALS,
           {"get_post_final_ln_dir": ("failed",), **{i: ("missing",) for i in ITEMS[:6]},
            "cos_sim_with_MLP_weights": ("missing",)}, setup_bound=True),
    Attack("terminal_escapes", "raises and prints clear-screen, window-title and cursor-movement sequences, from a "
           "file whose name holds one", ESCAPES,
           {"get_post_final_ln_dir": ("error",), **{i: ("missing",) for i in ITEMS[:6]},
            "cos_sim_with_MLP_weights": ("missing",)}, file_name="terminal_escapes\x1b[31m.py"),
]


def attack_source(attack: Attack) -> str:
    return BASE + f"\nTMP_BYTES, SHM_BYTES = {TMP_BYTES}, {SHM_BYTES}\n\n\n# %%\n" + attack.code
