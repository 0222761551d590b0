/**
 * Moving between assets from the annotator: Prev/Next walk the project's asset list with the
 * grid's filters (status, split, page in the URL), and every way out saves the asset first and
 * stays, with a notice, when that save fails.
 */
import { useQueryClient } from "@tanstack/react-query";
import { useRef } from "react";
import { useNavigate, useSearchParams } from "react-router";
import { api } from "../api/client";
import type { Asset, Page } from "../api/types";
import type { AssetSession } from "./session";

const ASSET_PAGE_SIZE = 60;

export function useAssetNavigation(projectId: number, session: AssetSession, notify: (message: string) => void) {
  const navigate = useNavigate();
  const qc = useQueryClient();
  const [params] = useSearchParams();

  const projectUrl = `/projects/${projectId}?${new URLSearchParams([...params].filter(([k]) => k !== "i")).toString()}`;

  /** Leave the asset for `url` once its edits are saved; stay (and say so) when the save fails. */
  const leaveTo = async (url: string) => {
    if (!(await session.leave())) {
      notify("Could not save this asset; not leaving it. Retry the save first (the edits are kept on this device).");
      return;
    }
    navigate(url);
  };

  // One move at a time: presses while the asset is still saving/leaving are ignored (they would
  // all land on the same next asset and stack duplicate history entries for the back button).
  const moving = useRef(false);
  const goto = async (delta: 1 | -1) => {
    if (moving.current) return;
    moving.current = true;
    try {
      await step(delta);
    } finally {
      moving.current = false;
    }
  };

  const step = async (delta: 1 | -1) => {
    const status = params.get("status") ?? "";
    const split = params.get("split") ?? "";
    let page = Math.max(1, Number(params.get("page") ?? 1) || 1);
    let i = Number(params.get("i") ?? -1);
    const fetchPage = (p: number) =>
      qc.fetchQuery({
        queryKey: ["assets", projectId, { status, split, page: p, pageSize: ASSET_PAGE_SIZE }],
        queryFn: () =>
          api<Page<Asset>>(`/projects/${projectId}/assets/`, {
            query: { status, split, page: p, page_size: ASSET_PAGE_SIZE },
          }),
      });
    try {
      let list = await fetchPage(page);
      if (i < 0 || list.results[i]?.id !== session.assetId) i = list.results.findIndex((a) => a.id === session.assetId);
      let j = i + delta;
      if (j < 0 || j >= list.results.length) {
        const p = page + delta;
        if (p < 1 || (p - 1) * ASSET_PAGE_SIZE >= list.count) {
          notify(delta > 0 ? "This is the last asset." : "This is the first asset.");
          return;
        }
        list = await fetchPage(p);
        page = p;
        j = delta > 0 ? 0 : list.results.length - 1;
      }
      const next = list.results[j];
      if (!next) return;
      const q = new URLSearchParams();
      if (status) q.set("status", status);
      if (split) q.set("split", split);
      q.set("page", String(page));
      q.set("i", String(j));
      await leaveTo(`/projects/${projectId}/annotate/${next.id}?${q.toString()}`);
    } catch (e) {
      notify((e as Error).message);
    }
  };

  return { goto, leaveTo, projectUrl };
}
