"""Dataset formats (Django-free): COCO instance masks, LabelMe, PNG index masks.

``READERS[format](files: dict[path, bytes]) -> ParsedImport``; writers live in each
module (``coco.write_coco``, ``labelme.write_labelme``, ``png.index_png_for``). The
semantic overlap rule every export shares is in :mod:`annotator.formats.semantic`.
"""
from annotator.formats.coco import read_coco
from annotator.formats.labelme import read_labelme
from annotator.formats.png import read_png

READERS = {"coco": read_coco, "labelme": read_labelme, "png": read_png}
IMPORT_FORMATS = tuple(READERS)
EXPORT_FORMATS = ("coco", "labelme", "png")
# readers that take ``crowd_as_ignore`` (crowd regions -> the ignore class)
CROWD_FORMATS = ("coco",)
