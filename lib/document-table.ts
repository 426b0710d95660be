/**
 * The documents table: document records, text chunks and remote-file bookkeeping in one table whose
 * shape comes from functions/core/documents/table.ts (the same definition local mode uses).
 */
import { RemovalPolicy } from "aws-cdk-lib";
import {
  AttributeType,
  Billing,
  type GlobalSecondaryIndexPropsV2,
  type ITableV2,
  ProjectionType,
  TableV2,
} from "aws-cdk-lib/aws-dynamodb";
import { Construct } from "constructs";
import { TABLE_KEYS } from "../functions/core/documents/table";

export interface DocumentTableProps {
  /**
   * What happens to the table (and its data) when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Point-in-time recovery (35 days of continuous backups).
   * @default true
   */
  readonly pointInTimeRecovery?: boolean;
  /**
   * Deletion protection (a deliberate step before the table can be deleted).
   * @default true when removalPolicy is RETAIN, false otherwise
   */
  readonly deletionProtection?: boolean;
  /**
   * For a table deployed with the unsharded indexes (`byKey`, `holdsFiles`, every attribute
   * projected): CloudFormation adds or removes one index per update, so such a stack moves to the
   * sharded ones in four deploys: step 1 adds `byKeySharded`, 2 adds `holdsFilesSharded`, 3 drops
   * `byKey`, then no step drops `holdsFiles`. Wait for each new index to be ACTIVE (backfilled)
   * before the next deploy; the functions read the old index while the new one is not ready.
   * @default - no upgrade: the sharded indexes only
   */
  readonly indexUpgradeStep?: IndexUpgradeStep;
}

/** See DocumentTableProps.indexUpgradeStep. */
export type IndexUpgradeStep = 1 | 2 | 3;

/**
 * On-demand table with PITR, TTL on `expiresAt` and two sharded GSIs (table.ts): `byKeySharded`
 * (key order; keys plus `status`) and `holdsFilesSharded` (sparse; keys only).
 */
export class DocumentTable extends Construct {
  /** The table. */
  public readonly table: ITableV2;

  constructor(scope: Construct, id: string, props: DocumentTableProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const { partitionKey, sortKey, ttlAttribute } = TABLE_KEYS;
    const step = props.indexUpgradeStep;
    if (step !== undefined && ![1, 2, 3].includes(step)) {
      throw new Error(`DocumentTable: indexUpgradeStep must be 1, 2 or 3, got ${step}`);
    }
    this.table = new TableV2(this, "Table", {
      partitionKey: { name: partitionKey, type: AttributeType.STRING },
      sortKey: { name: sortKey, type: AttributeType.STRING },
      billing: Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: props.pointInTimeRecovery ?? true },
      deletionProtection: props.deletionProtection ?? removalPolicy === RemovalPolicy.RETAIN,
      timeToLiveAttribute: ttlAttribute,
      removalPolicy,
      globalSecondaryIndexes: documentIndexes(step),
    });
  }
}

/** The table's GSIs: the sharded ones, plus the legacy ones an upgrade step still keeps. */
export function documentIndexes(step?: IndexUpgradeStep): GlobalSecondaryIndexPropsV2[] {
  const { byKeyIndex, holdsFilesIndex, legacyIndexNames } = TABLE_KEYS;
  const byKeyKeys = {
    partitionKey: { name: byKeyIndex.partitionKey, type: AttributeType.STRING },
    sortKey: { name: byKeyIndex.sortKey, type: AttributeType.STRING },
  };
  const filesKeys = { partitionKey: { name: holdsFilesIndex.partitionKey, type: AttributeType.STRING } };
  const sharded: GlobalSecondaryIndexPropsV2[] = [
    {
      indexName: byKeyIndex.name,
      ...byKeyKeys,
      projectionType: ProjectionType.INCLUDE,
      nonKeyAttributes: [...byKeyIndex.projected],
    },
    { indexName: holdsFilesIndex.name, ...filesKeys, projectionType: ProjectionType.KEYS_ONLY },
  ];
  const legacyByKey = { indexName: legacyIndexNames.byKey, ...byKeyKeys };
  const legacyFiles = { indexName: legacyIndexNames.holdsFiles, ...filesKeys };
  switch (step) {
    case 1:
      return [legacyByKey, legacyFiles, sharded[0]!];
    case 2:
      return [legacyByKey, legacyFiles, ...sharded];
    case 3:
      return [legacyFiles, ...sharded];
    default:
      return sharded;
  }
}
