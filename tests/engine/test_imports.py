"""What the engine pulls in, and what it does without a network. Each check runs in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, **env: str) -> dict:
    """Run code in a new interpreter (repository on the path); it prints one JSON object."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_engine_imports_no_ui_and_no_reference_library():
    """The engine is headless: no textual or rich; and transformers is a test-only dependency."""
    found = _run(
        "import json, sys\n"
        "import gpt_tui.engine.session, gpt_tui.engine.loading, gpt_tui.engine.tokenizer\n"
        "import gpt_tui.engine.analysis, gpt_tui.engine.sampling, gpt_tui.engine.gpt\n"
        "tops = {m.split('.')[0] for m in sys.modules}\n"
        "print(json.dumps({'ui': sorted(tops & {'textual', 'rich'}), 'torch': 'torch' in tops,\n"
        "                  'ref': sorted(tops & {'transformers', 'huggingface_hub'})}))"
    )
    assert found == {"ui": [], "torch": True, "ref": []}


def test_engine_package_import_is_cheap():
    """Importing gpt_tui.engine (or its config) does not import torch."""
    found = _run(
        "import json, sys\n"
        "import gpt_tui.engine, gpt_tui.engine.config\n"
        "print(json.dumps({'torch': 'torch' in sys.modules}))"
    )
    assert found == {"torch": False}


def test_loading_a_model_imports_neither_dynamo_nor_sympy(tmp_path):
    """The skeleton is built on the meta device without PyTorch's Python meta kernels, whose first
    use imports torch._dynamo (normal_) and sympy (arange): over a second of loading, for nothing."""
    found = _run(
        "import json, sys\n"
        "from gpt_tui.engine.config import GPTConfig\n"
        "from gpt_tui.engine.gpt import GPT\n"
        "from gpt_tui.engine.loading import load_model, save_model\n"
        f"path = save_model(GPT(GPTConfig(n_ctx=16, n_embd=8, n_layer=1, n_head=2, n_rows=300)), "
        f"__import__('pathlib').Path({str(tmp_path)!r}), meta={{}})\n"
        "heavy = lambda: [m for m in ('torch._dynamo', 'sympy') if m in sys.modules]\n"
        "before = heavy()\n"
        "loaded = load_model(str(path), device='cpu')\n"
        "print(json.dumps({'before': before, 'after': heavy(),\n"
        "                  'meta': any(t.is_meta for t in [*loaded.model.parameters(), *loaded.model.buffers()])}))"
    )
    assert found == {"before": [], "after": [], "meta": False}


def test_unknown_hub_model_fails_fast_offline(tmp_path):
    """With HF_HUB_OFFLINE and an empty cache, hub names fail at once with a clear message."""
    found = _run(
        "import json, time\n"
        "from gpt_tui.engine.loading import ModelLoadError, load_model\n"
        "out = {}\n"
        "for spec in ('nobody-here/no-such-model', 'gpt2'):\n"
        "    start = time.monotonic()\n"
        "    try:\n"
        "        load_model(spec, device='cpu')\n"
        "        out[spec] = ['loaded', 0]\n"
        "    except ModelLoadError as exc:\n"
        "        out[spec] = [str(exc), time.monotonic() - start]\n"
        "print(json.dumps(out))",
        HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf-home"), HF_HUB_CACHE=str(tmp_path / "hf-home" / "hub"),
    )
    missing, seconds = found["nobody-here/no-such-model"]
    assert "'nobody-here/no-such-model' is not in the Hugging Face cache" in missing
    assert "pass a local path" in missing and "\n" not in missing
    assert seconds < 10
    gpt2, seconds = found["gpt2"]
    assert "'openai-community/gpt2' is not in the Hugging Face cache" in gpt2 and seconds < 10


def test_engine_asks_torch_for_huge_pages_unless_told_otherwise():
    """Set before torch's first allocation (the weights then stream from 2 MB pages); a user's own
    setting wins."""
    code = ("import json, os, gpt_tui.engine.session\n"
            "print(json.dumps({'thp': os.environ.get('THP_MEM_ALLOC_ENABLE')}))")
    environ = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**environ, "PYTHONPATH": str(ROOT)})
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"thp": "1"}
    assert _run(code, THP_MEM_ALLOC_ENABLE="0") == {"thp": "0"}
