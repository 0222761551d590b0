"""Python client for the Tessera segmentation platform (see README.md)."""
from tessera.client import Client
from tessera.errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    NotFound,
    OperationFailed,
    PermissionDenied,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    TesseraError,
    ValidationError,
)
from tessera.http import RetryEvent
from tessera.models import (
    ApiKey,
    Artifact,
    Asset,
    Deployment,
    Job,
    LabelClass,
    Mask,
    MaskSet,
    Prediction,
    Project,
    TrainingEvent,
    TrainingRun,
    Workflow,
)
from tessera.rle import decode as rle_decode
from tessera.rle import encode as rle_encode

__version__ = "0.1.0"
__all__ = [
    "ApiError", "ApiKey", "Artifact", "Asset", "AuthenticationError", "Client", "ConfigurationError",
    "Conflict", "ConnectionFailed", "Deployment", "Job", "LabelClass", "Mask", "MaskSet",
    "NotFound", "OperationFailed", "PermissionDenied", "Prediction", "Project", "RateLimited",
    "RetryEvent", "ServerError", "ServiceUnavailable", "TesseraError", "TrainingEvent",
    "TrainingRun", "ValidationError", "Workflow", "rle_decode", "rle_encode",
]
