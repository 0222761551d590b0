"""Dataset formats (Django-free): COCO instance masks, LabelMe, PNG index masks, and
semantic PNG masks (VOC / CVAT Segmentation mask 1.1, Cityscapes, ADE20K), CVAT for
images 1.1, Label Studio JSON, COCO as Roboflow / Datature export it.

``FORMATS`` is the registry (:mod:`annotator.formats.registry`): one line per format,
with its reader ``read_<fmt>(files: Mapping[path, bytes]) -> ParsedImport``, its
detector ``detect_<fmt>(files)`` and its writer. ``READERS`` and ``IMPORT_FORMATS``
derive from it. The newer modules' writers take ``(images, classes)`` and yield
(path, bytes) pairs (``WRITERS``); the older ones are ``coco.write_coco``,
``labelme.write_labelme``, ``png.index_png_for``. The semantic overlap rule every export
shares is in :mod:`annotator.formats.semantic`.
"""
from annotator.formats.coco import detect_coco, read_coco, write_coco
from annotator.formats.cvat import detect_cvat, read_cvat, write_cvat
from annotator.formats.label_studio import (
    detect_label_studio,
    read_label_studio,
    write_label_studio,
)
from annotator.formats.labelme import detect_labelme, read_labelme, write_labelme
from annotator.formats.png import detect_png, index_png_for, read_png
from annotator.formats.registry import Format, Registry
from annotator.formats.roboflow import detect_roboflow, read_roboflow, write_roboflow
from annotator.formats.semantic_png import (
    detect_semantic_png,
    read_semantic_png,
    write_semantic_png,
)

# Detection tries these in order: the more specific layouts come before the general ones
# (a Roboflow export is also COCO).
FORMATS = Registry([
    Format("roboflow_coco", "COCO (Roboflow / Datature)", read_roboflow, detect_roboflow,
           write_roboflow),
    Format("coco", "COCO", read_coco, detect_coco, write_coco),
    Format("labelme", "LabelMe", read_labelme, detect_labelme, write_labelme),
    Format("png", "PNG index masks", read_png, detect_png, index_png_for),
    Format("semantic_png", "Semantic PNG masks (VOC, Cityscapes, ADE20K)", read_semantic_png,
           detect_semantic_png, write_semantic_png),
    Format("cvat", "CVAT for images 1.1", read_cvat, detect_cvat, write_cvat),
    Format("label_studio", "Label Studio JSON", read_label_studio, detect_label_studio,
           write_label_studio),
])
READERS = FORMATS.readers()
IMPORT_FORMATS = tuple(READERS)
# writers of the newer formats: (images, classes) -> (path, bytes) pairs
WRITERS = {"semantic_png": write_semantic_png, "cvat": write_cvat,
           "label_studio": write_label_studio, "roboflow_coco": write_roboflow}
EXPORT_FORMATS = ("coco", "labelme", "png", *WRITERS)
# readers that take ``crowd_as_ignore`` (crowd regions -> the ignore class)
CROWD_FORMATS = ("coco", "roboflow_coco")
