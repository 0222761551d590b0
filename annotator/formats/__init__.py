"""Dataset formats (Django-free): COCO instance masks, LabelMe, PNG index masks, and
semantic PNG masks (VOC / CVAT Segmentation mask 1.1, Cityscapes, ADE20K), CVAT for
images 1.1, Label Studio JSON, COCO as Roboflow / Datature export it.

``READERS[format](files: Mapping[path, bytes]) -> ParsedImport``; each newer module also
has ``detect_<fmt>(files) -> reason | None`` and ``write_<fmt>(images, classes)`` yielding
(path, bytes) pairs (``WRITERS``). The older writers are ``coco.write_coco``,
``labelme.write_labelme``, ``png.index_png_for``. The semantic overlap rule every export
shares is in :mod:`annotator.formats.semantic`.
"""
from annotator.formats.coco import read_coco
from annotator.formats.cvat import read_cvat, write_cvat
from annotator.formats.label_studio import read_label_studio, write_label_studio
from annotator.formats.labelme import read_labelme
from annotator.formats.png import read_png
from annotator.formats.roboflow import read_roboflow, write_roboflow
from annotator.formats.semantic_png import read_semantic_png, write_semantic_png

READERS = {"coco": read_coco, "labelme": read_labelme, "png": read_png}
READERS["semantic_png"] = read_semantic_png
READERS["cvat"] = read_cvat
READERS["label_studio"] = read_label_studio
READERS["roboflow_coco"] = read_roboflow
IMPORT_FORMATS = tuple(READERS)
# writers of the newer formats: (images, classes) -> (path, bytes) pairs
WRITERS = {"semantic_png": write_semantic_png, "cvat": write_cvat,
           "label_studio": write_label_studio, "roboflow_coco": write_roboflow}
EXPORT_FORMATS = ("coco", "labelme", "png", *WRITERS)
# readers that take ``crowd_as_ignore`` (crowd regions -> the ignore class)
CROWD_FORMATS = ("coco", "roboflow_coco")
