/**
 * The providers a deployment can choose (`provider: "moonshot" | "glm"`), and what follows from the
 * choice: endpoints, where the key comes from, the default model, the account's file quotas, the file
 * types the provider extracts. One table, read by the handlers (ingest, janitor, chat), the CDK
 * constructs and local mode, so a choice never leaves one of them on the other provider's facts.
 *
 * Sources: Moonshot, DESIGN notes "Provider facts" and the platform's Upload File page (seed 000).
 * Zhipu GLM: docs.bigmodel.cn "上传文件" (POST /paas/v4/files: file-extract takes pdf, docx, doc, xls,
 * xlsx, ppt, pptx, png, jpg, jpeg, csv; 50 MB per file, images 5 MB, at most 100 files), the
 * file-extract guide (docs.bigmodel.cn/cn/guide/tools/file-extract, same limits) and docs.z.ai's chat
 * completion reference (models, 128K/200K windows). `.txt` and `.md` are accepted for GLM on the word
 * of seed 003 (a third-party note listing "PDF, DOCX, TXT, MD" for GLM); the official list omits them,
 * so a real account may refuse them, and the document then fails as `provider_rejected` with GLM's
 * message.
 */

export const PROVIDER_NAMES = ["moonshot", "glm"] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/** The account limits the janitor and the quota room maker plan against. */
export interface ProviderLimits {
  maxFiles: number;
  maxFileBytes: number;
  maxTotalBytes: number;
}

/** What an upload must satisfy before it is sent (checked by ingestion, no provider call). */
export interface FileRules {
  maxFileBytes: number;
  /** Lower cap for images (GLM: 5 MB), when the provider has one. */
  maxImageBytes?: number;
  /** Lower-case extensions with the dot. */
  extensions: ReadonlySet<string>;
  /** How to name the accepted types in a refusal; unset: every extension is listed. */
  typesSummary?: string;
}

export interface ProviderProfile {
  name: ProviderName;
  /** For people: "Moonshot (Kimi)", "Zhipu GLM". */
  label: string;
  /** The public endpoint used when none is configured. */
  defaultBaseUrl: string;
  /** Other official endpoints of the same API (the China / international platform). */
  otherBaseUrls: readonly string[];
  /** Environment variables: base URL, the key itself (local mode), the key's secret (AWS). */
  env: { baseUrl: string; apiKey: string; apiKeySecret: string };
  defaultModel: string;
  limits: ProviderLimits;
  files: FileRules;
  /** Where an operator creates or checks the API key. */
  console: string;
  /**
   * Context windows of the offered models, for a provider without a model list (GLM). Conservative:
   * "128K" is taken as 128,000 tokens and "200K" as 200,000.
   */
  models?: Readonly<Record<string, number>>;
}

const MB = 1024 * 1024;
const IMAGE_EXTENSIONS = new Set([".png", ".jpg", ".jpeg"]);

export const PROVIDER_PROFILES: Readonly<Record<ProviderName, ProviderProfile>> = {
  moonshot: {
    name: "moonshot",
    label: "Moonshot (Kimi)",
    defaultBaseUrl: "https://api.moonshot.ai/v1",
    otherBaseUrls: ["https://api.moonshot.cn/v1"],
    env: {
      baseUrl: "MOONSHOT_BASE_URL",
      apiKey: "MOONSHOT_API_KEY",
      apiKeySecret: "MOONSHOT_API_KEY_SECRET",
    },
    defaultModel: "kimi-k2.6",
    limits: { maxFiles: 1000, maxFileBytes: 100 * MB, maxTotalBytes: 10 * 1024 * MB },
    files: {
      maxFileBytes: 100 * MB,
      typesSummary: "supported types include .pdf, .docx, .txt, .md, .html, .csv, .xlsx, .pptx and images",
      // The Upload File page lists these, "and more"; `.jpg` and `.htm` are the common spellings of
      // listed types. Others are refused before upload.
      extensions: new Set(
        (
          ".pdf .txt .csv .doc .docx .xls .xlsx .ppt .pptx .md .jpeg .jpg .png .bmp .gif .svg .svgz .webp .ico " +
          ".xbm .dib .pjp .tif .pjpeg .avif .dot .apng .epub .tiff .jfif .html .htm .json .mobi .log .go .h .c " +
          ".cpp .cxx .cc .cs .java .js .css .jsp .php .py .py3 .asp .yaml .yml .ini .conf .ts .tsx"
        ).split(" "),
      ),
    },
    console: "https://platform.moonshot.ai/console/api-keys",
  },
  glm: {
    name: "glm",
    label: "Zhipu GLM",
    defaultBaseUrl: "https://open.bigmodel.cn/api/paas/v4",
    otherBaseUrls: ["https://api.z.ai/api/paas/v4"],
    env: { baseUrl: "GLM_BASE_URL", apiKey: "GLM_API_KEY", apiKeySecret: "GLM_API_KEY_SECRET" },
    defaultModel: "glm-4.6",
    // No total-bytes cap is documented for file-extract; 100 files of at most 50 MB bound it.
    limits: { maxFiles: 100, maxFileBytes: 50 * MB, maxTotalBytes: 100 * 50 * MB },
    files: {
      maxFileBytes: 50 * MB,
      maxImageBytes: 5 * MB,
      extensions: new Set([
        ".pdf",
        ".docx",
        ".doc",
        ".xls",
        ".xlsx",
        ".ppt",
        ".pptx",
        ".png",
        ".jpg",
        ".jpeg",
        ".csv",
        ".txt",
        ".md",
      ]),
    },
    console: "https://open.bigmodel.cn/usercenter/apikeys (or https://z.ai/manage-apikey/apikey-list)",
    models: {
      "glm-4.6": 200_000,
      "glm-4.5": 128_000,
      "glm-4.5-air": 128_000,
      "glm-4.5-x": 128_000,
      "glm-4.5-airx": 128_000,
      "glm-4.5-flash": 128_000,
      "glm-4-32b-0414-128k": 128_000,
    },
  },
};

/** True for the image types a provider caps lower (`maxImageBytes`). */
export const isImageExtension = (ext: string): boolean => IMAGE_EXTENSIONS.has(ext);

/** The profile of a provider name; throws naming the valid ones for anything else. */
export function providerProfile(name: string): ProviderProfile {
  if ((PROVIDER_NAMES as readonly string[]).includes(name)) return PROVIDER_PROFILES[name as ProviderName];
  throw new RangeError(`unknown provider "${name}": use one of ${PROVIDER_NAMES.join(", ")}`);
}

/** Parses `id=tokens,id=tokens` (context windows); throws a RangeError naming the bad entry. */
export function parseModelWindows(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const entry of text.split(",")) {
    const item = entry.trim();
    if (item === "") continue;
    const m = /^([A-Za-z0-9][A-Za-z0-9._:/-]{0,127})\s*=\s*(\d+)$/.exec(item);
    const tokens = m ? Number(m[2]) : Number.NaN;
    if (!m || !Number.isSafeInteger(tokens) || tokens < 1024) {
      throw new RangeError(`"${item}" is not a model context window; write id=tokens, e.g. glm-4.6=200000`);
    }
    out[m[1]!] = tokens;
  }
  if (Object.keys(out).length === 0) throw new RangeError("no model context windows given");
  return out;
}
