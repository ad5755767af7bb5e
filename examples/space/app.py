"""The hf-spider Space: rank Hub models for a dataset. The logic lives in ``logic.py``; this file only launches it.

Run locally:  python examples/space/app.py   (or: hf-spider demo)
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from logic import build_app  # noqa: E402

demo = build_app()

if __name__ == "__main__":
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
