{
  "targets": [
    {
      "target_name": "vgic_unicorn",
      "sources": ["vgic_unicorn.c", "qemu_cpu.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lunicorn", "-ldl"]
    }
  ]
}
