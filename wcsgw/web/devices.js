// The Phone UI's device controls: Microphone, Speaker and Camera choices and the Volume slider
// (docs/web-sdk.md, "Devices and volume").  Apart from phone.js so that the page's call flow
// stays one file's concern and this one only maps the controls onto the SDK's standard-API
// calls: getMediaDevices() fills the lists, and a choice goes to the shown call at once
// (switchMic/switchCam replace the sent track, setAudioOutputId the output, setVolume the
// far end's loudness) and to each later call once it has media.

import { CALL_STATUS, getMediaDevices } from "./sdk/wcsgw.js";

/** Statuses in which a call has its media (switching before that has no track to replace). */
const WITH_MEDIA = [CALL_STATUS.ESTABLISHED, CALL_STATUS.HOLD];

export class DeviceControls {
  /**
   * @param {{microphone: HTMLSelectElement, speaker: HTMLSelectElement, camera: HTMLSelectElement,
   *          volume: HTMLInputElement, onError: (text: string) => void}} controls
   */
  constructor({ microphone, speaker, camera, volume, onError }) {
    this.microphone = microphone;
    this.speaker = speaker;
    this.camera = camera;
    this.volume = volume;
    this.onError = onError;
    /** @type {import("./sdk/wcsgw.js").Call|null} */
    this.call = null;
    this.watched = new WeakSet();
    // A browser that cannot choose outputs (no setSinkId): no Speaker list to mislead anyone.
    const canChooseOutput = typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;
    speaker.closest(".field").hidden = !canChooseOutput;
    microphone.addEventListener("change", () => this.#apply("microphone"));
    camera.addEventListener("change", () => this.#apply("camera"));
    speaker.addEventListener("change", () => this.#apply("speaker"));
    volume.addEventListener("input", () => this.#apply("volume"));
    navigator.mediaDevices?.addEventListener?.("devicechange", () => this.refresh());
    this.refresh();
  }

  /** Fill the lists again (labels appear once the page had microphone permission). */
  async refresh() {
    let devices;
    try {
      devices = await getMediaDevices();
    } catch (err) {
      return; // no mediaDevices (an insecure page): the lists stay at "Default"
    }
    fill(this.microphone, devices.audioInputs, "Microphone");
    fill(this.speaker, devices.audioOutputs, "Speaker");
    fill(this.camera, devices.videoInputs, "Camera");
  }

  /** The call the page shows now: the chosen devices and volume go to it once it has media. */
  attach(call) {
    this.call = call;
    if (!call || this.watched.has(call)) return;
    this.watched.add(call);
    // Once, at the first ESTABLISHED (not again after each unhold): the call's own media is
    // up, so there is a track to replace and an element to set.
    const first = (c) => {
      call.off(CALL_STATUS.ESTABLISHED, first);
      if (c !== this.call) return;
      this.refresh(); // the call's getUserMedia gave the labels
      for (const what of ["microphone", "camera", "speaker", "volume"]) this.#apply(what, true);
    };
    call.on(CALL_STATUS.ESTABLISHED, first);
  }

  #apply(what, quiet = false) {
    const call = this.call;
    if (!call || !WITH_MEDIA.includes(call.status())) return;
    let done;
    if (what === "volume") {
      call.setVolume(Number(this.volume.value));
      return;
    } else if (what === "microphone") {
      if (!this.microphone.value) return;
      done = call.switchMic(this.microphone.value);
    } else if (what === "camera") {
      if (!this.camera.value || !call.hasVideo()) return;
      done = call.switchCam(this.camera.value);
    } else {
      if (!this.speaker.value) return;
      done = call.setAudioOutputId(this.speaker.value);
    }
    done.catch((err) => {
      if (!quiet) this.onError(`${what[0].toUpperCase()}${what.slice(1)}: ${err.message}`);
    });
  }
}

/** The select's options: "Default" ("": the browser's choice) and each device, keeping the choice. */
function fill(select, devices, kind) {
  const chosen = select.value;
  select.replaceChildren(new Option("Default", ""));
  devices.forEach((d, i) => select.append(new Option(d.label || `${kind} ${i + 1}`, d.deviceId)));
  select.value = devices.some((d) => d.deviceId === chosen) ? chosen : "";
}
