"""Hostile submissions: each an attack, the verdicts it must get, and a note of what it tries.

Every case is graded on three items: the attacked one (`target`) and two honest functions
(`get_WOV`, `embedding`) that must keep their full marks whatever the attack did.
Bounded by construction: bombs stop by themselves, leaks are capped, network only to 127.0.0.1.
`PORT` (a listener of the test's) and `CANARY` (a file of the test's, outside every worker's folder)
are defined before each attack.
"""
from __future__ import annotations

from dataclasses import dataclass

BASE = '''
import os, sys, time
import torch as t
import numpy as np
from reference.setting import SimpleTokenizer, load_model, load_datasets

def get_WOV(model, layer, head):
    return model.W_V[layer, head] @ model.W_O[layer, head]

def embedding(model, tokenizer, char):
    return model.W_E[tokenizer.t_to_i[char]]
'''

HONEST = ("get_WOV", "embedding")


@dataclass(frozen=True)
class Hostile:
    name: str
    attack: str
    code: str
    target: str
    expected: tuple[str, ...]  # acceptable statuses of the target item
    notebook: bool = False
    mode: str = "lean"  # how notebooks run (GradeConfig.notebook_mode)
    # a submission that is a symbolic link: ("checkout", path in the grader's code) or ("class", a classmate's
    # file); it must be refused, every item an error that says so
    link_to: tuple[str, str] = ()

    @property
    def setup_bound(self) -> bool:
        """Could its outcome depend on the set-up a grader is started in (uids, files, processes,
        limits)? Then it runs in all three; the others as root only (tests/hostile/test_hostile.py)."""
        return self.name in SETUP_BOUND


# files, uids, processes outside the sandbox and per-user limits: what another set-up could change
# (a hang or an exit inside the sandbox is stopped the same way in each: by the warm worker there)
SETUP_BOUND = frozenset({
    "links_to_the_solutions", "links_to_a_classmate", "links_to_nothing", "import_reference", "read_reference_by_path",
    "read_cached_answers", "fake_result_files", "kill_parent", "huge_allocation", "slow_leak", "fork_bomb",
    "thread_bomb", "network", "detached_child", "read_every_file", "links_then_restart", "moves_folders_then_restart",
    "honest_victim", "copies_a_classmate", "reads_the_class_folder", "waits_for_the_next_submission",
})


WRONG_DIR = '''
def get_post_final_ln_dir(model):
    return t.zeros(model.cfg.d_model)
'''

READ_EVERYTHING = '''
import glob
import grader
_found = {}
_roots = [os.path.dirname(os.path.dirname(os.path.abspath(grader.__file__))), os.path.expanduser("~"), "/tmp",
          "/root/.cache", "/home", os.environ.get("BRACKET_GRADER_CACHE", "/nonexistent")]
for _root in _roots:
    for _dir, _subdirs, _files in os.walk(_root):
        _subdirs[:] = [d for d in _subdirs if d not in (".venv", "site-packages", ".git")]
        for _f in _files:
            if _f.endswith((".py", ".json")):
                try:
                    _found[os.path.join(_dir, _f)] = open(os.path.join(_dir, _f)).read()
                except Exception:
                    pass
for _path, _text in _found.items():
    if "def get_post_final_ln_dir" in _text and "NotImplementedError" not in _text.split("def get_post_final_ln_dir")[1][:300]:
        _ns = {"t": t, "Tensor": t.Tensor}
        try:
            exec(_text[_text.index("def get_post_final_ln_dir"):].split("\n\n\n")[0], _ns)
            get_post_final_ln_dir = _ns["get_post_final_ln_dir"]
            break
        except Exception:
            continue
'''

LINKS_THEN_RESTART = '''
for _target in ("/etc/passwd", CANARY, os.path.dirname(CANARY)):
    for _name in (".messages", ".replies", "submission.py", "answer-1.bin", "run1", "link"):
        try:
            os.symlink(_target, _name + str(abs(hash(_target)) % 97))
            os.symlink(_target, _name)
        except OSError:
            pass

def get_post_final_ln_dir(model):
    os._exit(9)  # the grader starts another worker for what is left
'''

FIND_CLASSMATES = '''
import glob
def _classmates():
    """Other students' files, by every way a worker might find them."""
    seen = set()
    for cmdline in glob.glob("/proc/*/cmdline"):
        try:
            args = open(cmdline, "rb").read().decode(errors="replace").split("\\0")
        except OSError:
            continue
        for arg in args:
            if os.path.isdir(arg):
                seen.update(glob.glob(os.path.join(arg, "**", "*.py"), recursive=True))
            elif arg.endswith(".py") and os.path.isfile(arg):
                seen.add(arg)
    for pattern in ("/tmp/**/submission.py", "/tmp/**/*.py", os.path.join(os.getcwd(), "..", "..", "..", "**", "*.py")):
        seen.update(glob.glob(pattern, recursive=True))
    mine = os.path.realpath(__file__) if "__file__" in globals() else ""
    return [p for p in seen if os.path.realpath(p) != mine]
'''
THIEVES = {
    "copies_a_classmate": FIND_CLASSMATES + '''
for _path in _classmates():
    try:
        _text = open(_path).read()
    except OSError:
        continue
    if "return model.W_U[:, 0] - model.W_U[:, 1]" in _text and "_classmates" not in _text:  # not its own copy
        def get_post_final_ln_dir(model):
            return model.W_U[:, 0] - model.W_U[:, 1]
        break
''',
    "waits_for_the_next_submission": FIND_CLASSMATES + '''
import subprocess
_spy = "import os, time, glob\\nend = time.time() + 120\\nwhile time.time() < end:\\n" \\
       "    for p in glob.glob('/tmp/**/*.py', recursive=True) + glob.glob('/tmp/**/*.ipynb', recursive=True):\\n" \\
       "        try:\\n            open(p, 'a').write('\\\\ndef get_WOV(model, layer, head):\\\\n    return 0\\\\n')\\n" \\
       "        except OSError:\\n            pass\\n    time.sleep(0.2)\\n"
subprocess.Popen([sys.executable, "-c", _spy], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def get_post_final_ln_dir(model):
    time.sleep(3)  # long enough for the next submission to start beside it
    return t.zeros(model.cfg.d_model)
''',
    "reads_the_class_folder": '''
import glob
for _path in glob.glob(os.path.join(os.environ.get("HOME", "/"), "..", "**", "honest_*.py"), recursive=True):
    exec(open(_path).read())
''',
}


MOVES_FOLDERS = '''
def get_post_final_ln_dir(model):
    _target = os.path.join(os.path.dirname(CANARY), "reports")  # a folder the grader's user can write
    _here = os.environ["HOME"]  # this run's folder (the working directory is the course's folders in it)
    for _folder in (_here, os.path.dirname(_here)):
        try:  # this run's folder and the grader's folder above it, moved and replaced by links
            os.rename(_folder, _folder + "-moved")
            os.symlink(_target, _folder)
        except OSError:
            pass
    os._exit(9)  # the grader starts another worker, in a folder it makes for it
'''

ABSURD_QUESTIONS = '''
import gc
from grader.worker.asking import Asker
_q = next((o for o in gc.get_objects() if isinstance(o, Asker)), None)
_replies = []
_absurd = [[[[[[[[[[1]]]]]]]]], [list(range(50_000))], [{"$model": "main"}, {"$data": {"strs": ["()" * 20] * 20_000}}, ["hook_embed"]],
           [{"$tuple": [{"$tuple": [1]}] * 10_000}], [{"$model": {"hash": "0" * 64}}], [{"$nope": 1}], [{"$module": [1, 2, 3]}]]
for _function in ("get_activations", "get_ln_fit", "get_out_by_neuron", "get_attn_probs") if _q is not None else []:
    for _args in _absurd:
        try:
            _replies.append(_q.ask(function=_function, args=_args, kwargs={}))
        except Exception as _e:
            _replies.append({"ok": False, "error": str(_e)})

def get_post_final_ln_dir(model):
    assert _q is not None and len(_replies) == 28 and not any(r.get("ok") for r in _replies), _replies
    return t.zeros(model.cfg.d_model)  # wrong: the questions were the point
'''

ABSURD_OBJECTS = '''
model = load_model()
data, _ = load_datasets()
out_by_component_in_unbalanced_dir = [[float("nan")] * len(data)] * 10  # shaped right: the values are judged
out_by_component_in_pre_20_unbalanced_dir = [[1e308] * len(data)] * 7
v_L, v_R = "not a vector", [[1.0] * 9000] * 9
adversarial_examples = ["(" * 1_000_000]
'''

# ---------------------------------------------------------------- values that once ended a whole batch
WITH_DATA = '''
model = load_model()
class Data:
    def __init__(self, strs):
        self.strs, self.isbal = strs, t.zeros(len(strs), dtype=t.bool)
data = Data({strs})
out_by_component_in_unbalanced_dir = t.zeros(10, len(data.strs))
'''

POISONS = [
    Hostile("overflow_answer", "answers 10**400, which overflows a float in the trusted process",
            "def avg_squared_cos_sim(v, n_samples=1000):\n    return 10**400\n", "avg_squared_cos_sim", ("failed", "error")),
    Hostile("nan_answer", "answers NaN", "def avg_squared_cos_sim(v, n_samples=1000):\n    return float('nan')\n",
            "avg_squared_cos_sim", ("failed",)),
    Hostile("words_in_data", "a `data` holding a string that is not brackets",
            WITH_DATA.format(strs='["()", "hello world", "(())"]'), "out_by_component_in_unbalanced_dir", ("error",)),
    Hostile("none_in_data", "a `data` holding None", WITH_DATA.format(strs='["()", None]'),
            "out_by_component_in_unbalanced_dir", ("error",)),
    Hostile("too_long_in_data", "a `data` holding a string longer than the model's context",
            WITH_DATA.format(strs='["(" * 300]'), "out_by_component_in_unbalanced_dir", ("error",)),
    Hostile("too_many_in_data", "a `data` of 20,000 strings (the course's is 5,000)",
            WITH_DATA.format(strs='["()"] * 20000'), "out_by_component_in_unbalanced_dir", ("error",)),
    # no balanced string: the reference is a mean over nothing (NaN), and zeros must not pass
    Hostile("all_unbalanced_data", "a `data` with no balanced string, and an all-zero object",
            WITH_DATA.format(strs='[")(", "((", "(()"] * 10'), "out_by_component_in_unbalanced_dir", ("error",)),
]

# ---------------------------------------------------------------- the submission's own top-level code
# The honest functions are removed first and defined again after the statement that hangs or ends
# its process: they keep their marks only if the statements after it still run.
AFTER_THE_STATEMENT = '''
def get_WOV(model, layer, head):
    return model.W_V[layer, head] @ model.W_O[layer, head]

def embedding(model, tokenizer, char):
    return model.W_E[tokenizer.t_to_i[char]]
'''
HANGS = "del get_WOV, embedding\ndef _demo():\n    while True:\n        pass\n\nout_by_component_in_unbalanced_dir = _demo()\n"
SWALLOWS = ("del get_WOV, embedding\ndef _demo():\n    while True:\n        try:\n            while True:\n"
            "                pass\n        except BaseException:\n            pass\n\n"
            "out_by_component_in_unbalanced_dir = _demo()\n")
EXITS = "del get_WOV, embedding\ndef _demo():\n    os._exit(0)\n\nout_by_component_in_unbalanced_dir = _demo()\n"
TOP_LEVEL = [
    Hostile("hangs_at_module_level", "a demo statement that loops forever, with the honest functions after it",
            HANGS + AFTER_THE_STATEMENT, "out_by_component_in_unbalanced_dir", ("missing",)),
    Hostile("hangs_and_swallows_at_module_level", "the same, swallowing the alarm (BaseException included)",
            SWALLOWS + AFTER_THE_STATEMENT, "out_by_component_in_unbalanced_dir", ("missing",)),
    Hostile("exits_at_module_level", "a demo statement that ends its process, with the honest functions after it",
            EXITS + AFTER_THE_STATEMENT, "out_by_component_in_unbalanced_dir", ("missing",)),
]

LINKS = [
    Hostile("links_to_the_solutions", "is a symbolic link to the installed reference solutions", "",
            "get_post_final_ln_dir", ("error",), link_to=("checkout", "reference/solutions.py")),
    Hostile("links_to_a_classmate", "is a symbolic link to a classmate's file", "", "get_post_final_ln_dir",
            ("error",), link_to=("class", "honest_victim.py")),
    Hostile("links_to_nothing", "is a symbolic link to a file that does not exist", "", "get_post_final_ln_dir",
            ("error",), link_to=("class", "nothing.py")),
]

CASES = [
    *POISONS,
    *TOP_LEVEL,
    *LINKS,
    Hostile("patch_assert_close", "replaces torch.testing.assert_close with a no-op, then answers wrongly",
            "import torch.testing\ntorch.testing.assert_close = lambda *a, **k: None\n" + WRONG_DIR,
            "get_post_final_ln_dir", ("failed",)),
    Hostile("patch_allclose", "makes torch.allclose, torch.equal and Tensor.__eq__ always agree",
            "t.allclose = lambda *a, **k: True\nt.equal = lambda *a, **k: True\nt.Tensor.__eq__ = lambda s, o: True\n"
            + WRONG_DIR, "get_post_final_ln_dir", ("failed",)),
    Hostile("patch_numpy_testing", "no-ops numpy.testing and np.allclose",
            "np.testing.assert_allclose = lambda *a, **k: None\nnp.allclose = lambda *a, **k: True\n" + WRONG_DIR,
            "get_post_final_ln_dir", ("failed",)),
    Hostile("patch_builtins", "replaces builtins (print, open, isinstance for floats) inside the worker",
            "import builtins\nbuiltins.print = lambda *a, **k: None\n_isinstance = builtins.isinstance\n"
            "builtins.isinstance = lambda o, c: True if c is float else _isinstance(o, c)\n" + WRONG_DIR,
            "get_post_final_ln_dir", ("failed",)),
    Hostile("lying_tensor_subclass", "returns a tensor subclass whose __eq__ and __torch_function__ lie",
            '''
class Liar(t.Tensor):
    def __eq__(self, other): return True
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func.__name__ in ("allclose", "equal", "isclose"): return True
        return super().__torch_function__(func, types, args, kwargs or {})
def get_post_final_ln_dir(model):
    return t.zeros(model.cfg.d_model).as_subclass(Liar)
''', "get_post_final_ln_dir", ("failed",)),
    Hostile("raising_dunders", "returns objects that raise in __repr__, __len__ and __float__",
            '''
class Nasty:
    def __repr__(self): raise RuntimeError("repr")
    def __len__(self): raise RuntimeError("len")
    def __float__(self): raise RuntimeError("float")
    def __getattr__(self, name): raise RuntimeError(name)
def avg_squared_cos_sim(v, n_samples=1000):
    return Nasty()
''', "avg_squared_cos_sim", ("failed",)),
    Hostile("raising_exception_str", "raises an exception whose __str__ itself raises",
            '''
class Boom(Exception):
    def __str__(self): raise RuntimeError("no message for you")
def get_post_final_ln_dir(model):
    raise Boom()
''', "get_post_final_ln_dir", ("error",)),
    Hostile("import_reference", "imports the reference solutions and calls them",
            "from reference.solutions import get_post_final_ln_dir\n", "get_post_final_ln_dir",
            ("missing",)),
    Hostile("read_reference_by_path", "reads the reference solutions' source by path and execs it",
            "import reference, pathlib\n_src = pathlib.Path(reference.__file__).with_name('solutions.py')\n"
            "try:\n    exec(_src.read_text())\nexcept PermissionError:\n    pass\n",
            "get_post_final_ln_dir", ("missing",)),
    Hostile("read_cached_answers", "searches the home, temp and cache folders for the grader's reference answers",
            '''
import glob, json
found = []
for pattern in ("/root/.cache/bracket-grader/**/*.json", os.path.expanduser("~/.cache/bracket-grader/**/*.json"),
                "/tmp/**/reference-*/**/*.json", os.environ.get("BRACKET_GRADER_CACHE", "/nonexistent") + "/**/*.json"):
    for path in glob.glob(pattern, recursive=True):
        try:
            found.append(json.load(open(path)))
        except Exception:
            pass
def get_post_final_ln_dir(model):
    assert found, "no answers could be read"
    return t.zeros(model.cfg.d_model)
''', "get_post_final_ln_dir", ("error", "failed")),
    Hostile("gc_and_inspect", "walks gc objects and stack frames looking for expected values",
            '''
import gc, inspect
def get_post_final_ln_dir(model):
    for frame in inspect.stack():
        for value in frame.frame.f_locals.values():
            if isinstance(value, dict) and "expected" in value:
                return value["expected"]
    for obj in gc.get_objects():
        if type(obj).__name__ in ("ReferenceResults", "Grader"):
            return obj
    return t.zeros(model.cfg.d_model)
''', "get_post_final_ln_dir", ("failed",)),
    Hostile("fake_result_files", "writes fake reports and results files in its folder and the parents",
            '''
import json, pathlib
fake = {"submissions": [{"path": "x", "score": 23, "max_score": 23, "exercises": []}]}
for folder in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents][:6]:
    for name in ("results.json", "report.json", "grades.csv"):
        try:
            (folder / name).write_text(json.dumps(fake))
        except OSError:
            pass
''' + WRONG_DIR, "get_post_final_ln_dir", ("failed",)),
    Hostile("sys_exit_at_import", "calls sys.exit while being executed (the later cells still count)",
            "sys.exit(3)\n# %%\n" + WRONG_DIR, "get_post_final_ln_dir", ("failed",)),
    Hostile("os_exit_in_item", "calls os._exit inside the graded function",
            "def get_post_final_ln_dir(model):\n    os._exit(7)\n", "get_post_final_ln_dir", ("error",)),
    Hostile("kill_parent", "sends SIGKILL to its parent process (the grader)",
            "import signal\ndef get_post_final_ln_dir(model):\n    try:\n        os.kill(os.getppid(), signal.SIGTERM)\n"
            "    except OSError:\n        pass\n    return t.zeros(model.cfg.d_model)\n",
            "get_post_final_ln_dir", ("failed",)),
    Hostile("infinite_python_loop", "loops forever inside the graded function",
            "def get_post_final_ln_dir(model):\n    while True:\n        pass\n", "get_post_final_ln_dir", ("timeout",)),
    Hostile("swallows_timeouts", "loops forever and swallows every exception, BaseException included",
            "def get_post_final_ln_dir(model):\n    while True:\n        try:\n            while True:\n                pass\n"
            "        except BaseException:\n            pass\n", "get_post_final_ln_dir", ("timeout",)),
    Hostile("huge_allocation", "asks for a 64 GB tensor",
            "def get_post_final_ln_dir(model):\n    return t.empty(16 * 1024**3)\n", "get_post_final_ln_dir", ("error",)),
    Hostile("slow_leak", "leaks memory 100 MB at a time, capped at 3 GB by itself",
            "_leak = []\ndef get_post_final_ln_dir(model):\n    for _ in range(30):\n        _leak.append(bytearray(100 * 1024**2))\n"
            "    return t.zeros(model.cfg.d_model)\n", "get_post_final_ln_dir", ("failed", "error", "timeout")),
    Hostile("output_flood", "prints 100 MB to stdout",
            "def get_post_final_ln_dir(model):\n    chunk = 'x' * (1024 * 1024)\n    for _ in range(100):\n        print(chunk)\n"
            "    return model.W_U[:, 0] - model.W_U[:, 1]\n", "get_post_final_ln_dir", ("passed",)),
    Hostile("fork_bomb", "forks children that fork (stops by itself after 2,000 processes)",
            '''
def get_post_final_ln_dir(model):
    import multiprocessing
    children = 0
    for _ in range(2000):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(5)
            os._exit(0)
        children += 1
    return t.zeros(model.cfg.d_model)
''', "get_post_final_ln_dir", ("failed", "error", "timeout")),
    Hostile("thread_bomb", "starts 3,000 sleeping threads (stops by itself)",
            '''
import threading
def get_post_final_ln_dir(model):
    for _ in range(3000):
        try:
            threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
        except RuntimeError:
            break
    return t.zeros(model.cfg.d_model)
''', "get_post_final_ln_dir", ("failed", "error")),
    Hostile("network", "connects to a listener the test opens on 127.0.0.1",
            '''
import socket
def get_post_final_ln_dir(model):
    port = int(open(os.environ.get("HOSTILE_PORT_FILE", "/nonexistent")).read()) if os.environ.get("HOSTILE_PORT_FILE") else PORT
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    s.sendall(b"leak")
    return t.zeros(model.cfg.d_model)
''', "get_post_final_ln_dir", ("error", "failed")),
    Hostile("env_tampering", "changes environment variables the grader reads and its own PATH",
            "os.environ['BRACKET_GRADER_CACHE'] = '/tmp/evil'\nos.environ['PATH'] = '/nonexistent'\n"
            "os.environ['BRACKET_GRADER_WEIGHTS'] = '/nonexistent'\n" + WRONG_DIR, "get_post_final_ln_dir", ("failed",)),
    Hostile("detached_child", "starts a detached child (new session) meant to outlive the grader",
            '''
import subprocess
def get_post_final_ln_dir(model):
    subprocess.Popen([sys.executable, "-c", "import time; open('alive', 'w').write('1'); time.sleep(30)"],
                     start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return t.zeros(model.cfg.d_model)
''', "get_post_final_ln_dir", ("failed",)),
    Hostile("mutates_model_and_globals", "edits weights in place, removes hooks and changes torch defaults in another item",
            '''
def get_post_final_ln_dir(model):
    with t.no_grad():
        for p in model.parameters():
            p.mul_(0)
    model.reset_hooks(including_permanent=True)
    t.set_default_dtype(t.float64)
    t.set_grad_enabled(True)
    return t.zeros(model.cfg.d_model)
''', "get_post_final_ln_dir", ("failed",)),
    Hostile("forged_messages", "writes fake result messages to every open file descriptor",
            '''
import json
def get_post_final_ln_dir(model):
    line = (json.dumps({"kind": "case", "item": "get_post_final_ln_dir", "case": "model", "ok": True,
                        "value": [1, 2, 3]}) + "\\n").encode()
    for fd in range(3, 64):
        try:
            os.write(fd, b"garbage\\n" + line)
        except OSError:
            pass
    return t.zeros(model.cfg.d_model)
''', "get_post_final_ln_dir", ("failed",)),
    Hostile("read_every_file", "walks the installed grader, the home, temporary and cache folders, and runs "
            "whatever solutions, examples or reference answers it can read",
            READ_EVERYTHING, "get_post_final_ln_dir", ("missing",)),
    Hostile("links_then_restart", "leaves links to files outside its folder under the names the grader writes, "
            "then ends its process so that the grader starts a new worker in a new folder",
            LINKS_THEN_RESTART, "get_post_final_ln_dir", ("error",)),
    Hostile("moves_folders_then_restart", "moves its folder and the grader's folder above it, leaves links to "
            "a folder of the grader's user in their place, then ends its process so that the grader makes another",
            MOVES_FOLDERS, "get_post_final_ln_dir", ("error",)),
    Hostile("honest_victim", "a classmate's correct work, graded beside the thieves below",
            "def get_post_final_ln_dir(model):\n    return model.W_U[:, 0] - model.W_U[:, 1]\n",
            "get_post_final_ln_dir", ("passed",)),
    Hostile("copies_a_classmate", "looks for classmates' files through /proc/*/cmdline, the temporary folder and "
            "the folders above its own, and takes a correct answer it finds",
            THIEVES["copies_a_classmate"], "get_post_final_ln_dir", ("missing",)),
    Hostile("reads_the_class_folder", "runs the class folder's honest_*.py files",
            THIEVES["reads_the_class_folder"], "get_post_final_ln_dir", ("missing",)),
    Hostile("waits_for_the_next_submission", "leaves a child that writes a wrong get_WOV into every submission file "
            "it can find in the temporary folder while the next submissions are graded",
            THIEVES["waits_for_the_next_submission"], "get_post_final_ln_dir", ("failed",)),
    Hostile("absurd_questions", "asks the grader for four helpers' answers with absurd arguments: deep nesting, "
            "50,000 values, 20,000 strings, 10,000 tuples, unknown models and tags",
            ABSURD_QUESTIONS, "get_post_final_ln_dir", ("failed",)),
    Hostile("absurd_objects", "object items that are NaN, a string, a huge list, and a million-character example",
            ABSURD_OBJECTS, "out_by_component_in_unbalanced_dir", ("failed", "error")),
    *(Hostile(f"absurd_objects_{item}", "the same absurd objects, judged for another item", ABSURD_OBJECTS, item,
              ("failed", "error"))
      for item in ("out_by_component_in_pre_20_unbalanced_dir", "v_L_v_R", "adversarial_examples")),
    Hostile("kernel_dies", "a notebook whose kernel is killed by its own code while grading",
            "def get_post_final_ln_dir(model):\n    import signal\n    os.kill(os.getpid(), signal.SIGKILL)\n",
            "get_post_final_ln_dir", ("error",), notebook=True, mode="kernel"),
]
