import { useEffect } from "react";

/** Set the document title while the calling page is shown: "<title> · Tessera". */
export function useTitle(title: string | undefined): void {
  useEffect(() => {
    document.title = title ? `${title} · Tessera` : "Tessera";
  }, [title]);
}
