/**
 * The memory capability module (SPEC §11): decides, under the live config, what a turn remembers —
 * the agent's soul, how much history it reads (`[memory] episodic_turns`), whether it gets the
 * memory tools and a recall block (`[memory] semantic`), and whose facts they are. Everything is read
 * from the live config at each turn, so a reload applies at the next turn; nothing is frozen.
 */
import type { SessionAddress } from "../core/index.ts";
import type { AgentConfig, LiveConfig } from "../config/index.ts";
import type { FactStore } from "../store/index.ts";
import { type HostTool, memoryTools, personOf, recall } from "./semantic.ts";
import { createSoulReader, soulPath } from "./soul.ts";

export class MemoryModule {
  readonly name = "memory";
  private readonly readSoul = createSoulReader();

  constructor(
    private readonly facts: FactStore,
    private readonly live: LiveConfig,
  ) {}

  /** The agent's persona, first in its system prompt ("" without a soul file). */
  soul(agent: AgentConfig): string {
    return this.readSoul(soulPath(this.live.current.home, agent.id, agent.soul));
  }

  /** Messages of history a turn reads: a turn is a user message and its answer (plus tool rounds), about 4 messages. */
  historyLimit(): number {
    return Math.max(8, this.live.current.memory.episodic_turns * 4);
  }

  /**
   * Whose words a turn answers: a channel turn names its sender (`null`: a group message without one,
   * no personal memory); otherwise the session's own person.
   */
  speaker(session: SessionAddress | null, person?: string | null): string | null {
    if (person !== undefined) return person;
    return session ? personOf(session) : null;
  }

  /**
   * The scope of plugin state for a turn: the speaker's, or — for a sender-less group post — the
   * group's own, labelled scope ("" for a turn without a session).
   */
  stateScope(session: SessionAddress | null, person?: string | null): string {
    return this.speaker(session, person) ?? (session ? `group:${personOf(session)}` : "");
  }

  /** The memory tools a turn is offered: none with `[memory] semantic = false` or without a speaker. */
  tools(agent: AgentConfig, session: SessionAddress | null, person?: string | null): HostTool[] {
    const who = this.speaker(session, person);
    return this.live.current.memory.semantic && session && who ? memoryTools(this.facts, agent.id, who) : [];
  }

  /** The facts relevant to a new message, for the system prompt ("" when off, nobody, or none). */
  async recall(agent: AgentConfig, session: SessionAddress, message: string, person?: string | null): Promise<string> {
    const who = this.speaker(session, person);
    return this.live.current.memory.semantic && who ? recall(this.facts, agent.id, who, message) : "";
  }
}
