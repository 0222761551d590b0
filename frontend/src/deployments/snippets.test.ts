import { describe, expect, it } from "vitest";
import { absoluteUrl, curlSnippet, pythonSnippet } from "./snippets";

describe("snippets", () => {
  const url = absoluteUrl("http://127.0.0.1:8000", "/api/v1/deployments/3/predict/");

  it("builds the absolute predict URL", () => {
    expect(url).toBe("http://127.0.0.1:8000/api/v1/deployments/3/predict/");
  });

  it("curl sends the key as a Bearer header and the image as multipart", () => {
    const s = curlSnippet(url, "tsk_ab12_x'y");
    expect(s).toContain(`'${url}'`);
    expect(s).toContain(`-H 'Authorization: Bearer tsk_ab12_x'\\''y'`);
    expect(s).toContain("-F 'image=@image.png'");
  });

  it("falls back to an environment variable without a key", () => {
    expect(curlSnippet(url, null)).toContain('"Authorization: Bearer $TESSERA_API_KEY"');
    expect(pythonSnippet(url, null)).toContain('API_KEY = os.environ["TESSERA_API_KEY"]');
  });

  it("python posts the file and decodes the RLE masks", () => {
    const s = pythonSnippet(url, "tsk_k");
    expect(s).toContain('API_KEY = "tsk_k"');
    expect(s).toContain(`URL = "${url}"`);
    expect(s).toContain('files={"image": fh}');
    expect(s).toContain("mask_util.decode");
  });
});
