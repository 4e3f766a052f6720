"""kb — a searchable knowledge base over Chinese local governments' rule-of-law annual reports."""

__version__ = "0.1.0"

import warnings

# jieba and cpca import pkg_resources; its deprecation notice is noise for kb's users.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
