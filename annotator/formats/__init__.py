"""Dataset formats (Django-free): COCO instance masks, LabelMe, PNG index masks.

``FORMATS`` is the registry (:mod:`annotator.formats.registry`): one line per format,
with its reader ``read_<fmt>(files: Mapping[path, bytes]) -> ParsedImport``, its
detector ``detect_<fmt>(files)`` and its writer. ``READERS`` and ``IMPORT_FORMATS``
derive from it. The semantic overlap rule every export shares is in
:mod:`annotator.formats.semantic`.
"""
from annotator.formats.coco import detect_coco, read_coco, write_coco
from annotator.formats.labelme import detect_labelme, read_labelme, write_labelme
from annotator.formats.png import detect_png, index_png_for, read_png
from annotator.formats.registry import Format, Registry

FORMATS = Registry([
    Format("coco", "COCO", read_coco, detect_coco, write_coco),
    Format("labelme", "LabelMe", read_labelme, detect_labelme, write_labelme),
    Format("png", "PNG index masks", read_png, detect_png, index_png_for),
])
READERS = FORMATS.readers()
IMPORT_FORMATS = tuple(READERS)
EXPORT_FORMATS = ("coco", "labelme", "png")
