// Audio worklet for voice notes: hands the microphone's raw samples
// (mono, the context's rate) to the page, which builds a WAV file and
// gives it to the client to encode with Opus. Nothing is stored anywhere.
class FerryRecorder extends AudioWorkletProcessor {
  process(inputs) {
    const input = inputs[0];
    if (input && input[0] && input[0].length > 0) {
      this.port.postMessage(input[0].slice(0));
    }
    return true;
  }
}
registerProcessor('ferry-recorder', FerryRecorder);
