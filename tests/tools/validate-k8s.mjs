// Validates Kubernetes manifests against the API schemas of kubernetes-models
// (and the Prometheus Operator's CRDs for ServiceMonitor/PodMonitor).
// Input on stdin: a JSON array of {file, doc}. Output: one line per document,
// "ok FILE KIND NAME" or "invalid FILE KIND NAME: reason"; exit 1 if any is invalid.
import { readFileSync } from "node:fs";

const groups = {
  v1: "kubernetes-models/v1",
  "apps/v1": "kubernetes-models/apps/v1",
  "policy/v1": "kubernetes-models/policy/v1",
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
};

const items = JSON.parse(readFileSync(0, "utf8"));
let bad = 0;
for (const { file, doc } of items) {
  const label = `${file} ${doc.kind} ${doc.metadata?.name ?? "?"}`;
  const from = groups[doc.apiVersion];
  try {
    if (!from) throw new Error(`apiVersion ${doc.apiVersion} has no schema here`);
    const mod = await import(from);
    const Model = mod[doc.kind];
    if (!Model) throw new Error(`no kind ${doc.kind} in ${doc.apiVersion}`);
    new Model(doc).validate();
    console.log(`ok ${label}`);
  } catch (e) {
    bad++;
    console.log(`invalid ${label}: ${e.message}`);
  }
}
process.exit(bad ? 1 : 0);
