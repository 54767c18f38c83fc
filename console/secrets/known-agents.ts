// The agents the console offers as "Agent access" checkboxes: every agent known from tokens and grants (AgentService.ListAgents).
import { useEffect, useState } from "preact/hooks";
import type { Api } from "../api.js";

export function useKnownAgents(api: Api, session: string): string[] {
  const [agents, setAgents] = useState<string[]>([]);
  useEffect(() => {
    let live = true;
    api.agents.listAgents({ session }).then(
      (res) => live && setAgents(res.agents.map((a) => a.name).sort()),
      // Without the list the form still works: granted agents keep their boxes and "Other agents" names new ones.
      () => live && setAgents([]),
    );
    return () => {
      live = false;
    };
  }, [api, session]);
  return agents;
}
