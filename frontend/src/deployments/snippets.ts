/**
 * Copyable client snippets for a deployment's predict endpoint. `key` is the API key when the
 * page still holds a freshly created one; otherwise an environment variable stands in.
 */

export const KEY_PLACEHOLDER_ENV = "TESSERA_API_KEY";

/** Absolute URL of the predict endpoint (`predictUrl` is the API's path). */
export function absoluteUrl(origin: string, predictUrl: string): string {
  return new URL(predictUrl, origin).toString();
}

/** Quote for a POSIX shell: single quotes, with embedded ones closed and escaped. */
function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function curlSnippet(url: string, key: string | null, imagePath = "image.png"): string {
  const auth = key ? shellQuote(`Authorization: Bearer ${key}`) : `"Authorization: Bearer $${KEY_PLACEHOLDER_ENV}"`;
  return [`curl -sS -X POST ${shellQuote(url)} \\`, `  -H ${auth} \\`, `  -F ${shellQuote(`image=@${imagePath}`)}`].join("\n");
}

export function pythonSnippet(url: string, key: string | null, imagePath = "image.png"): string {
  const keyLine = key ? `API_KEY = ${JSON.stringify(key)}` : `API_KEY = os.environ[${JSON.stringify(KEY_PLACEHOLDER_ENV)}]`;
  return [
    "import os",
    "",
    "import numpy as np",
    "import requests",
    "from pycocotools import mask as mask_util",
    "",
    keyLine,
    `URL = ${JSON.stringify(url)}`,
    "",
    `with open(${JSON.stringify(imagePath)}, "rb") as fh:`,
    '    res = requests.post(URL, headers={"Authorization": f"Bearer {API_KEY}"}, files={"image": fh}, timeout=60)',
    "res.raise_for_status()",
    "result = res.json()",
    'for p in result["predictions"]:',
    '    mask = mask_util.decode({"size": p["rle"]["size"], "counts": p["rle"]["counts"].encode()})  # H x W uint8',
    '    print(p["class_name"], p["area"], mask.shape, np.count_nonzero(mask))',
    'print("server ms:", result["timing_ms"])',
  ].join("\n");
}
