// An accessible tab strip (WAI-ARIA tabs pattern): role=tablist/tab, aria-selected, roving tabindex, arrow/Home/End keys.
import { useRef } from "preact/hooks";

export interface TabDef<T extends string> {
  id: T;
  label: string;
}

/** The strip; the selected tab controls the one panel rendered (`panelId(id)`). */
export function Tabs<T extends string>(props: { tabs: readonly TabDef<T>[]; selected: T; onSelect: (id: T) => void; label: string }) {
  const refs = useRef<(HTMLButtonElement | null)[]>([]);
  const { tabs, selected, onSelect } = props;
  const move = (index: number) => {
    const next = (index + tabs.length) % tabs.length;
    onSelect(tabs[next]!.id);
    refs.current[next]?.focus();
  };
  const onKeyDown = (e: KeyboardEvent, index: number) => {
    const target = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (target === undefined) return;
    e.preventDefault();
    move(target);
  };
  return (
    <div class="tabs" role="tablist" aria-label={props.label}>
      {tabs.map((tab, i) => (
        <button
          key={tab.id}
          ref={(el) => {
            refs.current[i] = el;
          }}
          type="button"
          role="tab"
          id={tabId(tab.id)}
          aria-selected={tab.id === selected}
          aria-controls={tab.id === selected ? panelId(tab.id) : undefined}
          tabIndex={tab.id === selected ? 0 : -1}
          onClick={() => onSelect(tab.id)}
          onKeyDown={(e) => onKeyDown(e, i)}
        >
          {tab.label}
        </button>
      ))}
    </div>
  );
}

export const tabId = (id: string) => `tab-${id}`;
export const panelId = (id: string) => `panel-${id}`;
