"""What ``projects`` announces to the apps above it, so it never imports them.

Receivers connect in their own ``AppConfig.ready()`` (IntelliBrush: SAM embeddings).

``assets_created``: ``project``, ``asset_ids``, ``user`` (may be None): images were added
(uploads, video frames), sent inside a transaction after the rows exist. A receiver's
exception reaches the sender (``send``, not ``send_robust``): the upload reports it.

``assets_deleted``: ``asset_ids``: the rows and image files are gone (sent after commit);
receivers remove what they stored for those assets.
"""

from django.dispatch import Signal

assets_created = Signal()
assets_deleted = Signal()
