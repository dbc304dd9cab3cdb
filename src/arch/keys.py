"""Top-level keys of our model YAMLs that ultralytics ignores and our glue reads back; one home each,
shared by the writer (src/arch/rewrite.py, src/job/model_file.py) and the readers
(src/ultralytics_glue/inside.py, trainer.py)."""

from __future__ import annotations

# {"layers": [...], "module": <attn name>, "params": {...}, "mode": <one of INSIDE_MODES>}: attention
# inside the bottlenecks of those blocks, applied when ultralytics parses the YAML. A list of such
# dicts where several entries put attention inside blocks (each block in one of them at most).
INSIDE_KEY = "inside"
INSIDE_MODES = ("branch", "conv")  # where in a bottleneck: its residual branch, or in place of its 3x3 conv

# {"weights": "/abs/base.pt", "layer_map": {base index: new index}}: what the trainer transfers into the
# freshly built model. It travels with the YAML, so DDP workers and resumed runs see it too.
TRANSFER_KEY = "transfer"
