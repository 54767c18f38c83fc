// The console's hash route (#/tab/rest): which tab is open and what inside it, so reloads and the back button work.
import { useEffect, useState } from "preact/hooks";

export const TABS = ["secrets", "agents", "tokens", "audit", "settings"] as const;
export type TabId = (typeof TABS)[number];

/** Where the console is: a tab and the rest of the path inside it (e.g. a secret's name). */
export interface Route {
  tab: TabId;
  rest: string;
}

export function parseRoute(hash: string): Route {
  const [tab = "", ...rest] = hash.replace(/^#\/?/, "").split("/");
  const known = (TABS as readonly string[]).includes(tab) ? (tab as TabId) : "secrets";
  return { tab: known, rest: rest.map((p) => safeDecode(p)).join("/") };
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

export function href(tab: TabId, rest = ""): string {
  return `#/${tab}${rest ? `/${encodeURIComponent(rest)}` : ""}`;
}

export function navigate(tab: TabId, rest = ""): void {
  location.hash = href(tab, rest);
}

/** The current route, following hashchange. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", onChange);
    return () => removeEventListener("hashchange", onChange);
  }, []);
  return route;
}
