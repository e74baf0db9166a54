// The Store conformance suite against every kind: the folder store (a mirror in place), the endpoint store of `pull` (whole sets behind a link), the SMB store on a real Samba share, and the in-memory store of unit tests.
import { chmod, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createEndpointStore } from "../../src/stores/endpoint.js";
import { createFolderStore } from "../../src/stores/folder.js";
import { DEFAULT_HTTP_OPTIONS, type HttpOptions } from "../../src/net/http-options.js";
import { createSmbStore } from "../../src/stores/smb.js";
import { createMemoryStore } from "../support/memory-store.js";
import { SMB_SKIP_REASON, smbFolder, smbService, smbUrl } from "../servers/smb-service.js";
import { describeStoreConformance, type StoreUnderTest } from "./store-suite.js";

const METADATA = ".update-mirror";
const SMB_HTTP: HttpOptions = { ...DEFAULT_HTTP_OPTIONS, connectTimeoutMs: 5_000, idleTimeoutMs: 20_000 };

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/**
 * What a reader finds in the published folder at `root`, read with plain fs calls (through `root`
 * itself, so through the endpoint's link): files by '/'-separated path, the metadata folder left out.
 */
function folderPayload(root: string): Pick<StoreUnderTest, "readPayload" | "listPayload"> {
  return {
    async readPayload(path) {
      try {
        return await readFile(join(root, ...path.split("/")));
      } catch (err) {
        if (isMissing(err)) return undefined;
        throw err;
      }
    },
    async listPayload() {
      const found: string[] = [];
      const walk = async (dir: string, prefix: string): Promise<void> => {
        let entries: import("node:fs").Dirent[];
        try {
          entries = await readdir(dir, { withFileTypes: true });
        } catch (err) {
          if (isMissing(err)) return;
          throw err;
        }
        for (const e of entries) {
          if (prefix === "" && e.name === METADATA) continue;
          // Anything but a folder counts as a published entry, so a stray link or device shows up as one.
          if (e.isDirectory()) await walk(join(dir, e.name), `${prefix}${e.name}/`);
          else found.push(`${prefix}${e.name}`);
        }
      };
      await walk(root, "");
      return found;
    },
  };
}

describeStoreConformance(
  "folder",
  (dir) => {
    const root = join(dir, "mirror");
    return { store: createFolderStore(root), ...folderPayload(root), close: async () => undefined };
  },
  { resume: true },
);

describeStoreConformance(
  "endpoint (pull --to, whole sets behind a link)",
  (dir) => {
    // The link's parent is the fresh folder, so the hidden sibling `.bases.update-mirror` is made in it too.
    const target = join(dir, "bases");
    return { store: createEndpointStore(target), ...folderPayload(target), close: async () => undefined };
  },
  { resume: true },
);

describeStoreConformance(
  "memory (test/support/memory-store.ts, for unit tests)",
  () => {
    const store = createMemoryStore();
    return {
      store,
      readPayload: async (path) => {
        const content = store.payload.get(path);
        return content && Buffer.from(content);
      },
      listPayload: async () => [...store.payload.keys()],
      close: async () => undefined,
    };
  },
  { resume: true },
);

const smb = smbService();
describeStoreConformance(
  "smb (Samba share)",
  async () => {
    const folder = await smbFolder(smb as NonNullable<typeof smb>, "store-conformance");
    // The server writes as the share's user, not as the test's.
    await chmod(folder.dir, 0o777);
    const store = createSmbStore(smbUrl(smb as NonNullable<typeof smb>, folder.name), { http: SMB_HTTP, password: (smb as NonNullable<typeof smb>).password });
    return {
      store,
      // Read through the server's own folder: what an endpoint mounting the share would see.
      ...folderPayload(folder.dir),
      async close() {
        await store.close();
        await folder.remove();
      },
    };
  },
  {
    resume: { unsupported: "our SMB client cannot reopen a partial on a share for appending: an interrupted download starts over (objects already staged are kept)" },
    ...(smb === undefined && { skip: SMB_SKIP_REASON }),
  },
);
