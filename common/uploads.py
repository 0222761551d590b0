"""Upload bodies spooled to disk leave nothing behind, even when the web process is killed.

Django's TemporaryFileUploadHandler writes each large file of a multipart body to a
*named* temporary file (``/tmp/tmpXXXX.upload.png``) and deletes it when the request
ends; a web process that dies mid-upload (OOM, SIGKILL, a crash) leaves it there. This
handler writes to an anonymous temporary file instead (``tempfile.TemporaryFile``:
O_TMPFILE, or unlinked at once), which the kernel frees when the process goes, however
it goes. Nothing in Tessera needs an upload's path (``temporary_file_path``)."""
from __future__ import annotations

import tempfile

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, TemporaryFileUploadHandler


class AnonymousTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    def new_file(self, *args, **kwargs) -> None:
        FileUploadHandler.new_file(self, *args, **kwargs)
        self.file = UploadedFile(tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR),
                                 self.file_name, self.content_type, 0, self.charset,
                                 self.content_type_extra)

    def upload_interrupted(self) -> None:
        if hasattr(self, "file"):
            self.file.close()
