/**
 * Who else has this asset open in the annotator (`ws /ws/assets/<id>/presence/`): one entry
 * per other open annotator, another person or the same person in another tab. Reconnects
 * with backoff; an empty list while disconnected.
 */
import { useEffect, useState } from "react";

export interface PresentUser {
  id: string;
  user: string;
}

export function presenceUrl(assetId: number): string {
  const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${window.location.host}/ws/assets/${assetId}/presence/`;
}

/** "alice", "alice and bob", "alice (2 tabs) and bob" — for the annotator's header. */
export function describePresence(others: PresentUser[]): string {
  const counts = new Map<string, number>();
  for (const o of others) counts.set(o.user, (counts.get(o.user) ?? 0) + 1);
  const names = [...counts].map(([u, n]) => (n > 1 ? `${u} (${n} tabs)` : u));
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

export function usePresence(assetId: number): PresentUser[] {
  const [others, setOthers] = useState<PresentUser[]>([]);
  useEffect(() => {
    let socket: WebSocket | null = null;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let stopped = false;
    let failures = 0;
    const connect = () => {
      socket = new WebSocket(presenceUrl(assetId));
      socket.onmessage = (e) => {
        failures = 0;
        const msg = JSON.parse(String(e.data)) as { type: string; others?: PresentUser[] };
        if (msg.type === "presence") setOthers(msg.others ?? []);
      };
      socket.onclose = (e) => {
        setOthers([]);
        if (stopped || e.code === 4403) return;
        failures++;
        timer = setTimeout(connect, Math.min(30_000, 1000 * 2 ** Math.min(failures, 5)));
      };
    };
    connect();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      socket?.close();
    };
  }, [assetId]);
  return others;
}
