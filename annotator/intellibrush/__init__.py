"""IntelliBrush: SAM-powered smart labeling.

Django-free model code:  ``sam`` (build, weights policy, embeddings, decode),
``onnx_export`` (decoder for the browser), ``fallback`` (GrabCut when no weights).
Django glue:             ``services`` (storage, caches, one computation per embedding),
``tasks`` (gpu queue), ``apis`` + ``urls`` (HTTP).
"""
