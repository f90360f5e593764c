/**
 * The cluster capability module (src/gateway/capability.ts): with `[store] kind = "nats"` it opens
 * the JetStream work queue (./work.ts) before the channels are built, starts pulling once the
 * gateway listens, puts the cluster in `status` (gateways seen, NATS server, the queue's consumers,
 * dead letters), and stops pulling first at shutdown (a message in flight is finished or redelivered
 * elsewhere). Absent with another store: one gateway needs no queue.
 */
import type { Config } from "../config/index.ts";
import type { Logger } from "../lib/log.ts";
import type { ClusterWork, DeadLetter, WorkItem, WorkVerdict } from "./work.ts";

export type { ClusterWork } from "./work.ts";

/**
 * The work queue for this config: null unless the store is the nats store. Throws unavailable when
 * NATS does not answer. `EXOCLAW_WORK_ACK_WAIT_MS` (tests, benches) shortens the 10 s after which a
 * silent holder's message is redelivered; it applies when the consumers are created.
 */
export async function openClusterWork(
  config: Config,
  log: Logger,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<ClusterWork | null> {
  if (config.store.kind !== "nats") return null;
  const servers = (config.store.nats_url || config.bus.nats_url).split(",");
  const ackWait = Number(env.EXOCLAW_WORK_ACK_WAIT_MS);
  // Loaded here, not at start: the NATS client is only for this store (start-up time and memory).
  const { ClusterWork } = await import("./work.ts");
  return ClusterWork.open({
    servers,
    replicas: config.store.replicas,
    namespace: config.store.namespace,
    log: log.child({ module: "cluster" }),
    ...(ackWait > 0 && { ackWaitMs: ackWait }),
  });
}

/**
 * The module over an opened queue; `handle` is the channels' delivery of one work message, `dead`
 * records one dead-lettered after its last delivery in the inbox (`exoclaw inbox`).
 */
export function clusterModule(
  work: ClusterWork,
  handle: (item: WorkItem) => Promise<WorkVerdict>,
  dead: (d: DeadLetter) => Promise<void>,
) {
  return {
    name: "cluster",
    start: () => work.start(handle, dead),
    status: () => work.status(),
    quiesce: () => work.pause(),
    stop: () => work.stop(),
  };
}
