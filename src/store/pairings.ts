/**
 * The pairing port: who may talk on a channel — strangers with a pending code, people the operator
 * approved (SPEC §13).
 *
 * Every method may reject with StoreError; a failed write changes nothing (all-or-nothing).
 */

/**
 * A person's standing on a channel (SPEC §13): asked for access with a pairing code, or approved by
 * the operator. Absent = a stranger. `person` is `<channel>:<account>:<peer>`, as memory names people.
 */
export interface Pairing {
  person: string;
  channel: string;
  status: "pending" | "approved";
  /** The pairing code while pending (unique among pending ones); null once approved. */
  code: string | null;
  created_at: number;
  /** When a pending code stops being accepted; null once approved. */
  expires_at: number | null;
  /** When the code was last sent to the person (pending only). */
  notified_at: number | null;
  approved_at: number | null;
}

export interface PairingQuery {
  channel?: string;
  status?: Pairing["status"];
}

export interface PairingStore {
  /** A person's pairing record, or null for a stranger. */
  getPairing(person: string): Promise<Pairing | null>;
  /** The pending record holding `code` (exact match), or null. */
  pairingByCode(code: string): Promise<Pairing | null>;
  /** Creates or replaces the record of `pairing.person`. */
  savePairing(pairing: Pairing): Promise<void>;
  /** Records, oldest first. */
  listPairings(query: PairingQuery): Promise<Pairing[]>;
  /** Forgets a person's record; false when there was none. */
  deletePairing(person: string): Promise<boolean>;
}
