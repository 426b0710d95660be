/**
 * The documents table: document records, text chunks and remote-file bookkeeping in one table whose
 * shape comes from functions/core/documents/table.ts (the same definition local mode uses).
 */
import { RemovalPolicy } from "aws-cdk-lib";
import { AttributeType, Billing, type ITableV2, TableV2 } from "aws-cdk-lib/aws-dynamodb";
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
}

/** On-demand table with PITR, the byKey and holdsFiles GSIs and TTL on `expiresAt`. */
export class DocumentTable extends Construct {
  /** The table. */
  public readonly table: ITableV2;

  constructor(scope: Construct, id: string, props: DocumentTableProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const { partitionKey, sortKey, byKeyIndex, holdsFilesIndex, ttlAttribute } = TABLE_KEYS;
    this.table = new TableV2(this, "Table", {
      partitionKey: { name: partitionKey, type: AttributeType.STRING },
      sortKey: { name: sortKey, type: AttributeType.STRING },
      billing: Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: props.pointInTimeRecovery ?? true },
      deletionProtection: props.deletionProtection ?? removalPolicy === RemovalPolicy.RETAIN,
      timeToLiveAttribute: ttlAttribute,
      removalPolicy,
      globalSecondaryIndexes: [
        {
          indexName: byKeyIndex.name,
          partitionKey: { name: byKeyIndex.partitionKey, type: AttributeType.STRING },
          sortKey: { name: byKeyIndex.sortKey, type: AttributeType.STRING },
        },
        {
          indexName: holdsFilesIndex.name,
          partitionKey: { name: holdsFilesIndex.partitionKey, type: AttributeType.STRING },
        },
      ],
    });
  }
}
