export { BudgetError, BudgetGuard, type CallEstimate, periodStarts, type Reservation } from "./budget.ts";
export { costOf, type Price, priceOf } from "./prices.ts";
export { type MeterScope, meteredStream } from "./metered.ts";
